"""The predict routes' JSON (orjson first) reads and writes what the standard library would."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from kronos_bridge.routes.predict import parse_json
from kronos_bridge.routes.responses import FastJSONResponse
from kronos_server.errors import MalformedRequestError

BODIES = [
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
    b'{"x": NaN, "y": Infinity, "z": -Infinity}',
    b'{"big": 123456789012345678901234567890}',
    b"[-0, -0.0, 1e400, -1e400, 1e-400, 5e-324, 1.7976931348623157e308]",
    b'"\\ud800"',  # a lone surrogate escape
    b'"\\ud83d\\ude00 caf\xc3\xa9"',
    '{"a": 1}'.encode("utf-16"),
    '{"a": 1}'.encode("utf-8-sig"),
    b"\xff\xfe\x00",
    b'{"a": [1, 2,]}',
    b'{"a": "tab\there"}',
    b"",
    b"   ",
    b" {} ",
    b"[" * 3000 + b"]" * 3000,
    b"1" * 5000,
    b"nul",
    b"true false",
    b'{"a": 1} x',
]


def same(body: bytes) -> None:
    try:
        want: Any = json.loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(MalformedRequestError):
            parse_json(body)
        return
    got = parse_json(body)
    assert json.dumps(got) == json.dumps(want)  # NaN, -0.0 and key order compared too


@pytest.mark.parametrize("body", BODIES)
def test_edge_cases_read_alike(body: bytes) -> None:
    same(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_reads_alike(value: object) -> None:
    same(json.dumps(value).encode())


def test_floats_are_exact() -> None:
    assert parse_json(b"[11.27, 0.1]") == [11.27, 0.1]
    assert math.copysign(1, parse_json(b"-0.0")) == -1  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_responses_carry_the_same_json(value: object) -> None:
    try:
        want = JSONResponse(value).body
    except ValueError:  # NaN: JSONResponse refuses it; no route sends one
        return
    assert json.loads(bytes(FastJSONResponse(value).body)) == json.loads(bytes(want))


def test_responses_orjson_refuses_are_written_as_before() -> None:
    for value in ({"big": 2**70}, {1: "a"}, {"s": "\ud800"}):
        try:
            want = JSONResponse(value).body
        except UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                FastJSONResponse(value)
            continue
        assert FastJSONResponse(value).body == want
