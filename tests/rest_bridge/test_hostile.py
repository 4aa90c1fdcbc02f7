"""Hostile JSON bodies against the REST bridge: always a 4xx with the one error body naming the
field, never a 5xx, and the server answers correctly afterwards.

Already covered elsewhere (not repeated here): malformed JSON, an empty body, bytes that are
not UTF-8 at all, 100,000 open brackets and a 5,000-digit number (400, test_errors.py
test_malformed_json_is_400_and_counted); a body over the size limit with and without
Content-Length, and too many batch items (413, test_size_limits_are_413); booleans and
10**400 integers as prices (422, test_invalid_input_refused_by_the_bridge_names_the_rest_field);
generated bodies of the documented schema (test_openapi_fuzz.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from tests.rest_bridge.conftest import Bridged
from tests.rest_bridge.helpers import body, poll

SINGLE = "/v1/predict/single"
BATCH = "/v1/predict/batch"
JSON = {"Content-Type": "application/json"}
KNOWN_GOOD = body(40, 4, start=100, sample_count=4, seed=7)


@pytest.fixture(scope="module")
def baseline(bridged: Bridged) -> dict[str, Any]:
    """The known-good forecast before any hostile input (the module's first use of the server)."""
    reply = bridged.client.post(SINGLE, json=KNOWN_GOOD, headers=bridged.auth)
    assert reply.status_code == 200, reply.text
    out: dict[str, Any] = reply.json()
    return out


def refused(reply: Any, status: int, error: str, field: str | None) -> dict[str, Any]:
    """A 4xx with the one error body; ``field`` (when given) named in details and message."""
    assert reply.status_code == status, reply.text
    out: dict[str, Any] = reply.json()
    assert set(out) == {"error", "message", "details", "request_id"}
    assert out["error"] == error and out["message"]
    assert out["request_id"] == reply.headers["x-request-id"]
    if field is not None:
        assert out["details"]["field"] == field, out
        assert field in out["message"], out
    return out


def _raw(text: str) -> bytes:
    return text.encode()


def _good_text(n: int = 20, pred_len: int = 2) -> str:
    return json.dumps(body(n, pred_len))


PLACEHOLDER = 123456.789


def _with(change: Callable[[dict[str, Any]], None], literal: str | None = None) -> bytes:
    """body(20, 2) changed; ``literal`` replaces the number PLACEHOLDER in the JSON text."""
    payload = body(20, 2)
    change(payload)
    text = json.dumps(payload, allow_nan=True)
    return (text.replace(str(PLACEHOLDER), literal) if literal else text).encode()


# (name, raw body, status, error, field)
CASES: list[tuple[str, bytes, int, str, str | None]] = [
    # the literals Python's json accepts but JSON does not: values, refused by the service
    (
        "NaN literal",
        _with(lambda b: b["candles"][0].update(open=math.nan)),
        422,
        "invalid_argument",
        "candles[0].open",
    ),
    (
        "Infinity literal",
        _with(lambda b: b["candles"][4].update(high=math.inf)),
        422,
        "invalid_argument",
        "candles[4].high",
    ),
    (
        "-Infinity literal",
        _with(lambda b: b["candles"][7].update(volume=-math.inf)),
        422,
        "invalid_argument",
        "candles[7].volume",
    ),
    (
        "1e400 (inf as a float)",
        _with(lambda b: b["candles"][0].update(close=PLACEHOLDER), "1e400"),
        422,
        "invalid_argument",
        "candles[0].close",
    ),
    (
        "NaN temperature",
        _with(lambda b: b["overrides"].update(temperature=math.nan)),
        422,
        "invalid_argument",
        "overrides.temperature",
    ),
    (
        "1e308 prices overflow float32",
        _with(lambda b: b["candles"][2].update(high=1e308)),
        422,
        "invalid_argument",
        "candles[2].high",
    ),
    (
        "1e30 prices overflow the statistics",
        _with(
            lambda b: [
                c.update({k: c[k] * 1e30 for k in ("open", "high", "low", "close")}) for c in b["candles"]
            ]
        ),
        422,
        "invalid_argument",
        "candles[*].open",
    ),
    # wrong types and nested garbage: refused by the bridge's parser, naming the REST field
    (
        "string price",
        _with(lambda b: b["candles"][3].update(open="12.5")),
        422,
        "invalid_argument",
        "candles[3].open",
    ),
    (
        "null price",
        _with(lambda b: b["candles"][3].update(close=None)),
        422,
        "invalid_argument",
        "candles[3].close",
    ),
    (
        "candle is a list",
        _with(lambda b: b["candles"].__setitem__(1, [1, 2, 3, 4])),
        422,
        "invalid_argument",
        "candles[1]",
    ),
    (
        "candles is an object",
        _with(lambda b: b.update(candles={"open": [1.0]})),
        422,
        "invalid_argument",
        "candles",
    ),
    (
        "nested timestamps",
        _with(lambda b: b["timestamps"].__setitem__(2, [["2024-01-01"]])),
        422,
        "invalid_argument",
        "timestamps[2]",
    ),
    (
        "nested quantiles",
        _with(lambda b: b["overrides"].update(quantiles=[0.5, {"q": [0.1]}])),
        422,
        "invalid_argument",
        "overrides.quantiles[1]",
    ),
    (
        "object series_id",
        _with(lambda b: b.update(series_id={"a": [1, {"b": None}]})),
        422,
        "invalid_argument",
        "series_id",
    ),
    ("numeric timezone", _with(lambda b: b.update(timezone=5)), 422, "invalid_argument", "timezone"),
    (
        "1,000-character timezone",
        _with(lambda b: b.update(timezone="a" * 1000)),
        422,
        "invalid_argument",
        "timezone",
    ),
    (
        "float pred_len",
        _with(lambda b: b["overrides"].update(pred_len=2.5)),
        422,
        "invalid_argument",
        "overrides.pred_len",
    ),
    (
        "huge pred_len",
        _with(lambda b: b["overrides"].update(pred_len=10**30)),
        422,
        "invalid_argument",
        "overrides.pred_len",
    ),
    (
        "negative sample_count",
        _with(lambda b: b["overrides"].update(sample_count=-(2**31))),
        422,
        "invalid_argument",
        "overrides.sample_count",
    ),
    (
        "unknown nested field",
        _with(lambda b: b["candles"][0].update(extra={"deep": [[[1]]]})),
        422,
        "invalid_argument",
        "candles[0].extra",
    ),
    (
        "year 9999 prediction",
        _with(lambda b: b.update(prediction_timestamps=["9999-12-31T00:00:00"])),
        422,
        "invalid_argument",
        "prediction_timestamps[0]",
    ),
    ("top level null", b"null", 422, "invalid_argument", "request"),
    ("top level string", b'"candles"', 422, "invalid_argument", "request"),
    (
        "top level array of the request",
        b"[" + _good_text().encode() + b"]",
        422,
        "invalid_argument",
        "request",
    ),
    # not parseable at all: 400 bad_request (no field to name)
    (
        "10,000 nested arrays",
        b'{"candles": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        400,
        "bad_request",
        None,
    ),
    (
        "10,000 nested objects",
        b'{"candles": [' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"]}",
        400,
        "bad_request",
        None,
    ),
    (
        "invalid UTF-8 inside a string",
        _good_text().encode().replace(b'"s0"', b'"\xff\xfe\xc3"'),
        400,
        "bad_request",
        None,
    ),
    ("trailing garbage", _good_text().encode() + b" }{", 400, "bad_request", None),
]


@pytest.mark.parametrize(("name", "raw", "status", "error", "field"), CASES, ids=[c[0] for c in CASES])
def test_hostile_single_bodies_are_refused_naming_the_field(
    bridged: Bridged,
    baseline: dict[str, Any],
    name: str,
    raw: bytes,
    status: int,
    error: str,
    field: str | None,
) -> None:
    reply = bridged.client.post(SINGLE, content=raw, headers={**bridged.auth, **JSON})
    out = refused(reply, status, error, field)
    if status == 400:
        assert "JSON" in out["message"] or "UTF-8" in out["message"]


def test_huge_number_of_candles_names_the_field(bridged: Bridged) -> None:
    rows = 100_000
    payload = {
        "candles": [{"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}] * rows,
        "timestamps": [f"2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(rows)],
        "overrides": {"pred_len": 1},
    }
    out = refused(
        bridged.client.post(SINGLE, json=payload, headers=bridged.auth), 422, "invalid_argument", "timestamps"
    )
    assert f"got {rows}" in out["message"]
    assert bridged.running.settings.max_history < rows


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_a_body_not_declared_as_json_is_415(bridged: Bridged, content_type: str) -> None:
    for path in (SINGLE, BATCH):
        reply = bridged.client.post(
            path, content=_good_text().encode(), headers={**bridged.auth, "Content-Type": content_type}
        )
        out = refused(reply, 415, "unsupported_media_type", "Content-Type")
        assert content_type.split(";")[0] in out["message"]
    # JSON, a +json type and no Content-Type at all (as the replaced service) are parsed
    for headers in (
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "application/vnd.x+json"},
        {},
    ):
        reply = bridged.client.post(
            SINGLE, content=_good_text().encode(), headers={**bridged.auth, **headers}
        )
        assert reply.status_code == 200, reply.text


def test_tiny_temperature_is_forecast_not_a_fault(bridged: Bridged) -> None:
    """1e-300 is a valid temperature (> 0) but 0 in float32: greedy, finite, never a 500."""
    for temperature in (1e-300, 5e-324, 1e-38):
        reply = bridged.client.post(
            SINGLE, json=body(20, 3, temperature=temperature, seed=1), headers=bridged.auth
        )
        assert reply.status_code == 200, reply.text
        rows = reply.json()["prediction"]
        assert len(rows) == 3
        assert all(isinstance(r[k], float) and math.isfinite(r[k]) for r in rows for k in ("open", "close"))


def test_hostile_batch_items_fail_alone_and_good_ones_are_answered(bridged: Bridged) -> None:
    good = [body(20, 2, start=10 * i, seed=i) for i in range(3)]
    hostile: list[tuple[Any, str | None]] = [
        ({"candles": "many", "timestamps": []}, "candles"),
        (5, "request"),
        (None, "request"),
        ([1, [2, [3]]], "request"),
        (json.loads(_with(lambda b: b["candles"][1].update(open=math.nan))), "candles[1].open"),
        (json.loads(_with(lambda b: b["overrides"].update(top_p=2.0))), "overrides.top_p"),
        (json.loads(_with(lambda b: b.update(timezone="x" * 500))), "timezone"),
    ]
    items: list[Any] = [good[0], *(h for h, _ in hostile[:4]), good[1], *(h for h, _ in hostile[4:]), good[2]]
    raw = json.dumps({"items": items}, allow_nan=True).encode()
    reply = bridged.client.post(BATCH, content=raw, headers={**bridged.auth, **JSON})
    assert reply.status_code == 200, reply.text
    slots = reply.json()
    assert len(slots) == len(items)
    answers = [slots[0], slots[5], slots[9]]
    for g, answer in zip(good, answers, strict=True):
        assert len(answer["prediction"]) == 2
        alone = bridged.client.post(SINGLE, json=g, headers=bridged.auth).json()
        assert answer["prediction"] == alone["prediction"]  # seeded: as if it were alone
    errors = [*slots[1:5], *slots[6:9]]
    for (_, field), slot in zip(hostile, errors, strict=True):
        assert slot["error"] == "invalid_argument" and slot["status"] == 422, slot
        assert slot["details"]["field"] == field and field in slot["message"], slot


BACKTEST = "/v1/backtest"


def _backtest(n: int = 120, **fields: Any) -> dict[str, Any]:
    from tests.rest_bridge.test_backtest import backtest_body

    return backtest_body(n, **fields)


def _bt(n: int = 120, **fields: Any) -> bytes:
    return json.dumps(_backtest(n, **fields)).encode()


def _backtest_nan_close() -> bytes:
    text = json.dumps(_backtest())
    return text.replace(
        '"close": ' + json.dumps(_backtest()["candles"][7]["close"]), '"close": NaN', 1
    ).encode()


BAD = "invalid_argument"
BACKTEST_CASES: list[tuple[str, bytes, int, str, str | None]] = [
    ("not JSON", b"{horizon: 4", 400, "bad_request", None),
    ("nested far too deep", b"[" * 100_000 + b"]" * 100_000, 400, "bad_request", None),
    ("a list, not an object", b"[1, 2]", 422, BAD, "request"),
    ("NaN close", _backtest_nan_close(), 422, BAD, None),
    ("horizon a float", _bt(horizon=4.5), 422, BAD, "horizon"),
    ("horizon true", _bt(horizon=True), 422, BAD, "horizon"),
    ("horizon negative", _bt(horizon=-3), 422, BAD, "horizon"),
    ("horizon past max_context", _bt(horizon=10**6), 422, BAD, "horizon"),
    ("origins beyond int32", _bt(origins=2**31), 422, BAD, "origins"),
    ("origins 0", _bt(origins=0), 422, BAD, "origins"),
    ("a huge origin_step", _bt(origin_step=2**30), 422, BAD, "origins"),
    ("context past the history", _bt(30, context=60), 422, BAD, "timestamps"),
    ("a seed beyond uint64", _bt(overrides={"seed": 2**70}), 422, BAD, "overrides.seed"),
    ("sample_count 10**9", _bt(overrides={"sample_count": 10**9}), 422, BAD, "overrides.sample_count"),
    ("an unknown key", _bt(horizn=4), 422, BAD, "horizn"),
]


@pytest.mark.parametrize(
    ("name", "raw", "status", "error", "field"), BACKTEST_CASES, ids=[c[0] for c in BACKTEST_CASES]
)
def test_hostile_backtest_bodies_are_refused_naming_the_field(
    bridged: Bridged,
    baseline: dict[str, Any],
    name: str,
    raw: bytes,
    status: int,
    error: str,
    field: str | None,
) -> None:
    reply = bridged.client.post(BACKTEST, content=raw, headers={**bridged.auth, **JSON})
    out = refused(reply, status, error, field)
    if name == "NaN close":
        assert out["details"]["field"].startswith("candles[7].close"), out


def test_afterwards_the_server_answers_as_before(bridged: Bridged, baseline: dict[str, Any]) -> None:
    reply = bridged.client.post(SINGLE, json=KNOWN_GOOD, headers=bridged.auth)
    assert reply.status_code == 200 and reply.json() == baseline
    assert bridged.client.get("/v1/readyz").status_code == 200
    dp = bridged.running.server.dataplane
    assert dp is not None
    poll(lambda: dp.engine.stats().running_rows == 0 and dp.engine.stats().queued_rows == 0)
    for route in (SINGLE, BATCH, BACKTEST):
        assert bridged.count("kronos_requests_total", route=route, status="error") == 0
    assert bridged.count("kronos_requests_total", route=BACKTEST, status="invalid") >= len(BACKTEST_CASES) - 2
    assert bridged.count("kronos_requests_total", route=SINGLE, status="invalid") >= len(CASES)
