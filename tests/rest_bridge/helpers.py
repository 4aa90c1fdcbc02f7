"""Request bodies in the legacy JSON shape, from the shipped CSV (the gRPC tests' candles)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.rpc.helpers import FIELDS, _rows


def candles(n: int = 40, start: int = 0) -> tuple[list[dict[str, float]], list[str]]:
    rows = _rows()[start : start + n]
    return [{f: float(r[f]) for f in FIELDS} for r in rows], [r["timestamps"] for r in rows]


def body(n: int = 40, pred_len: int | None = 4, start: int = 0, **overrides: Any) -> dict[str, Any]:
    """A single-series request body; ``overrides`` go into "overrides" (pred_len too)."""
    rows, stamps = candles(n, start)
    out: dict[str, Any] = {"series_id": f"s{start}", "candles": rows, "timestamps": stamps}
    given = {"pred_len": pred_len, **overrides} if pred_len is not None else dict(overrides)
    if given:
        out["overrides"] = given
    return out


def poll(check: Callable[[], bool], timeout: float = 10) -> None:
    """The server records a call's metrics just after answering it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")
