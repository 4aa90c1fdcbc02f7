"""The JSON codec's fast paths give what its per-value ones give."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import json_codec
from kronos_server.forecast.json_codec import _json_values
from kronos_server.forecast.types import FEATURES


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


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.booleans(), st.none()
)
candle = st.dictionaries(
    st.sampled_from(["open", "high", "low", "close", "volume", "amount", "extra"]), numbers, max_size=7
)
candle_lists = st.lists(st.one_of(candle, candle, candle, st.integers(), st.text(max_size=2)), max_size=6)


def outcome(fn: Callable[..., dict[str, np.ndarray]], value: list[Any]) -> Any:
    try:
        columns = fn(value)
    except InvalidInputError as exc:
        return ("error", exc.message, exc.field)
    return {name: column.tolist() for name, column in columns.items()}


@settings(max_examples=500, deadline=None)
@given(candle_lists)
def test_fast_candles_agree_with_the_checked_path(value: list[Any]) -> None:
    fast = json_codec._candles_fast(value)
    if fast is not None:
        assert {k: v.tolist() for k, v in fast.items()} == outcome(json_codec._candles_checked, value)
    assert outcome(json_codec._candles, value) == outcome(json_codec._candles_checked, value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({k: st.floats(0.1, 1e6) for k in FEATURES}), min_size=1, max_size=8))
def test_well_formed_candles_take_the_fast_path(value: list[Any]) -> None:
    assert json_codec._candles_fast(value) is not None
