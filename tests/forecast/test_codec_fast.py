"""The JSON codec's vectorised float encoding writes what the per-value one wrote."""

from __future__ import annotations

import math

import numpy as np

from kronos_server.forecast.json_codec import _json_values


def per_value(value: np.float32) -> float | None:
    # the encoding before: the shortest decimal of the float32, None where JSON has no number
    return float(str(value)) if math.isfinite(float(value)) else None


def test_every_kind_of_float32_encodes_as_its_shortest_decimal() -> None:
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 60_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    scaled = (rng.standard_normal(60_000) * 10.0 ** rng.integers(-40, 38, 60_000)).astype(np.float32)
    special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 3.4028235e38, 11.27, 1e20], np.float32)
    values = np.concatenate([bits, scaled, special, np.zeros(3, np.float32)]).reshape(-1, 6)
    got = _json_values(values)
    want = [[per_value(v) for v in row] for row in values]
    assert got == want
    signs = [[math.copysign(1, v) if v is not None else None for v in row] for row in got]
    assert signs == [[math.copysign(1, v) if v is not None else None for v in row] for row in want]


def test_rows_are_plain_floats() -> None:
    out = _json_values(np.array([[11.27, 0.1]], dtype=np.float32))
    assert out == [[11.27, 0.1]] and all(type(v) is float for v in out[0])
