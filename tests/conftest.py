"""Shared fixtures: the parity checkpoints and cases (copied from the original implementation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kronos_server.forecast import calendar
from kronos_server.forecast.types import SamplingParams, SeriesInput
from kronos_server.model.checkpoint import load_predictor, load_tokenizer
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer

PARITY = Path(__file__).parent / "data" / "parity"
CASES = sorted(p.stem for p in (PARITY / "cases").glob("*.json"))


def load_case(name: str) -> dict[str, Any]:
    return json.loads((PARITY / "cases" / f"{name}.json").read_text())


def case_series(case: dict[str, Any]) -> list[SeriesInput]:
    """The case's inputs as domain objects, with the case's sampling settings."""
    p = case["params"]
    sampling = SamplingParams(
        temperature=p["T"], top_k=p["top_k"], top_p=p["top_p"], sample_count=p["sample_count"]
    )
    out = []
    for i, s in enumerate(case["inputs"]["series"]):
        rows = np.asarray(s["rows"], dtype=np.float64)
        cols = {name: rows[:, j] for j, name in enumerate(s["columns"])}
        out.append(
            SeriesInput(
                series_id=f"s{i}",
                timestamps=calendar.parse_timestamps(s["timestamps"], "UTC", "timestamps"),
                prediction_timestamps=calendar.parse_timestamps(s["y_timestamps"], "UTC", "y"),
                sampling=sampling,
                **cols,
            )
        )
    return out


def expected_pred(exp: dict[str, Any]) -> np.ndarray:
    """A case's recorded forecast [P, 6] with the server's one documented departure from the
    original: volume/amount clamped at 0, and 0 where the history had none (the original
    forecasts noise such as -3.6e-06 there)."""
    pred = np.asarray(exp["pred"], dtype=np.float32)
    np.maximum(pred[:, 4:], 0, out=pred[:, 4:])
    pred[:, 4:][:, np.asarray(exp["norm_std"], dtype=np.float32)[4:] == 0] = 0
    return pred


@pytest.fixture(scope="session")
def parity_tokenizer() -> KronosTokenizer:
    return load_tokenizer(PARITY / "tokenizer").module  # type: ignore[return-value]


@pytest.fixture(scope="session")
def parity_predictor() -> KronosPredictor:
    return load_predictor(PARITY / "predictor").module  # type: ignore[return-value]


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A running gRPC server with the parity model; one container "tester" with a key."""
    from tests.servers import start_server

    running = start_server(tmp_path_factory.mktemp("grpc"))
    yield running
    running.stop()


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> Any:
    """Servers in tests log warnings and errors only (tests of logging add their own sinks)."""
    import contextlib
    import sys

    from loguru import logger

    logger.remove()
    handler = logger.add(sys.stderr, level="WARNING")
    yield
    with contextlib.suppress(ValueError):  # a CLI test may have reconfigured logging already
        logger.remove(handler)
