"""Every row of the gRPC status -> HTTP table, against real servers, and the one error body."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from kronos_bridge.app import create_app
from kronos_bridge.server import HttpServer
from kronos_server.app import build_rest_app
from kronos_server.errors import CancelledError
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.security.keys import add_key
from kronos_server.settings import load_settings
from tests.rest_bridge.conftest import Bridged, bridge
from tests.rest_bridge.helpers import body, poll

SINGLE = "/v1/predict/single"


def error_of(reply: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    out: dict[str, Any] = reply.json()
    assert set(out) == {"error", "message", "details", "request_id"}
    assert out["error"] == error
    assert out["request_id"] == reply.headers["x-request-id"]
    return out


def test_malformed_json_is_400_and_counted(bridged: Bridged) -> None:
    before = bridged.count("kronos_requests_total", route=SINGLE, status="invalid")
    for content in (b"{not json", b"", b"\xff\xfe\x00", b"[" * 100_000, b"1" * 5000):
        reply = bridged.client.post(SINGLE, content=content, headers=bridged.auth)
        error_of(reply, 400, "bad_request")
    assert bridged.count("kronos_requests_total", route=SINGLE, status="invalid") == before + 5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["overrides"].update(top_pp=0.5), "overrides.top_pp"),
        (lambda b: b["timestamps"].__setitem__(3, "yesterday"), "timestamps[3]"),
        (lambda b: b["candles"][2].pop("low"), "candles[2].low"),
        (lambda b: b["candles"][2].update(open=True), "candles[2].open"),
        (lambda b: b["candles"][2].update(open=10**400), "candles[2].open"),
        (lambda b: b["timestamps"].__setitem__(0, "9999-01-01T00:00:00"), "timestamps[0]"),
        (lambda b: b["overrides"].update(seed=-1), "overrides.seed"),
        (lambda b: b["overrides"].update(seed=2**64), "overrides.seed"),  # past uint64
        (lambda b: b["overrides"].update(top_k=2**40), "overrides.top_k"),
        (lambda b: b.update(timezone="Mars/Olympus"), "timezone"),
    ],
)
def test_invalid_input_refused_by_the_bridge_names_the_rest_field(
    bridged: Bridged, change: Any, field: str
) -> None:
    payload = body(20, 2)
    change(payload)
    out = error_of(bridged.client.post(SINGLE, json=payload, headers=bridged.auth), 422, "invalid_argument")
    assert out["details"]["field"] == field
    assert out["message"].startswith(field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["candles"][17].update(close=-3.0), "candles[17].close"),
        (lambda b: b["overrides"].update(top_p=1.5), "overrides.top_p"),
        (lambda b: b["overrides"].update(pred_len=1000), "overrides.pred_len"),
        (lambda b: b["overrides"].update(quantiles=[0.5, 2.0]), "overrides.quantiles[1]"),
        (lambda b: b["timestamps"].__setitem__(3, b["timestamps"][2]), "timestamps[3]"),
        (lambda b: b.update(prediction_timestamps=["2020-01-01T00:00:00"]), "prediction_timestamps[0]"),
    ],
)
def test_invalid_input_refused_by_the_service_names_the_rest_field(
    bridged: Bridged, change: Any, field: str
) -> None:
    payload = body(20, 1)
    change(payload)
    out = error_of(bridged.client.post(SINGLE, json=payload, headers=bridged.auth), 422, "invalid_argument")
    assert out["details"]["field"] == field
    assert out["message"].startswith(f"{field}:")


def test_credentials_401_and_403(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key = add_key(keys, "alpha")
    info_key = add_key(keys, "infoonly", methods=["GetModelInfo"])
    with bridge(tmp_path, api_keys_file=keys) as b:
        client = b.client
        for headers in (
            {},
            {"X-Container-Name": "alpha"},
            {"X-Container-Name": "alpha", "Authorization": "Bearer wrong"},
            {"X-Container-Name": "alpha", "Authorization": "Bearer \u00e9t\u00e9".encode("latin-1")},
        ):
            out = error_of(client.post(SINGLE, json=body(), headers=headers), 401, "unauthenticated")
            assert "wrong" not in out["message"]
        ok = {"X-Container-Name": "alpha", "Authorization": f"Bearer {key}"}
        assert client.post(SINGLE, json=body(), headers=ok).status_code == 200
        limited = {"X-Container-Name": "infoonly", "Authorization": f"Bearer {info_key}"}
        assert client.get("/v1/models", headers=limited).status_code == 200
        error_of(client.post(SINGLE, json=body(), headers=limited), 403, "permission_denied")
        poll(lambda: b.count("kronos_requests_total", route=SINGLE, status="unauthorized") == 4)
        assert b.count("kronos_requests_total", route=SINGLE, status="forbidden") == 1
        assert b.count("kronos_security_events_total", event="blocked", container="infoonly") == 1


def test_rate_limit_is_429_with_retry_after_and_ratelimit_headers(tmp_path: Path) -> None:
    with bridge(tmp_path, rate_limit="2/minute") as b:
        for _ in range(2):
            assert b.client.get("/v1/models", headers=b.auth).status_code == 200
        reply = b.client.post(SINGLE, json=body(), headers=b.auth)
        out = error_of(reply, 429, "rate_limited")
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.headers["x-ratelimit-limit"] == "2"
        assert reply.headers["x-ratelimit-remaining"] == "0"
        assert int(reply.headers["x-ratelimit-reset"]) >= 1
        assert out["details"]["limit"] == 2 and out["details"]["remaining"] == 0
        # the forwarded container is the one whose bucket is spent
        assert b.count("kronos_rate_limit_hits_total", container=b.running.container) == 1
        assert b.count("kronos_requests_total", route=SINGLE, status="rate_limited") == 1


def test_size_limits_are_413(tmp_path: Path) -> None:
    with bridge(tmp_path, max_request_size_mb=0.01, max_batch_items=2) as b:
        big = body(400, 4)  # ~40 kB of JSON > 10 kB
        out = error_of(b.client.post(SINGLE, json=big, headers=b.auth), 413, "too_large")
        assert out["details"]["limit_bytes"] == 10485

        def chunks() -> Iterator[bytes]:  # no Content-Length: the bridge counts as it reads
            for _ in range(20):
                yield b" " * 1000

        error_of(b.client.post(SINGLE, content=chunks(), headers=b.auth), 413, "too_large")
        items = {"items": [body(10, 1), body(10, 1), body(10, 1)]}
        out = error_of(b.client.post("/v1/predict/batch", json=items, headers=b.auth), 413, "too_large")
        assert out["details"]["limit_items"] == 2
        assert b.count("kronos_requests_total", route=SINGLE, status="too_large") == 2
        assert b.count("kronos_request_size_rejections_total", container="unknown") == 3


def test_size_limit_of_the_service_is_413(tmp_path: Path) -> None:
    """A standalone bridge with a larger limit than its gRPC server: the service's refusal."""
    with bridge(tmp_path, max_request_size_mb=0.01) as b:
        settings = load_settings(max_request_size_mb=1, dev_keys_dir=tmp_path / "dev")
        app = create_app(settings, grpc_target=b.running.target)
        with TestClient(app) as client:
            out = error_of(client.post(SINGLE, json=body(400, 4), headers=b.auth), 413, "too_large")
            assert "bytes" in out["message"]
        poll(lambda: b.count("kronos_request_size_rejections_total", container=b.running.container) == 1)


def _heavy(tmp: Path, **overrides: Any) -> Any:
    """The embedded default model (512 context): long requests take real time."""
    return bridge(
        tmp,
        model_path=DEFAULT_MODEL_DIR / "predictor",
        tokenizer_path=DEFAULT_MODEL_DIR / "tokenizer",
        max_context=512,
        **overrides,
    )


def test_engine_overload_is_503_with_retry_after(tmp_path: Path) -> None:
    with _heavy(tmp_path, max_queued_rows=8, max_batch_rows=8) as b:
        dp = b.running.server.dataplane
        assert dp is not None
        long: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: long.append(
                b.client.post(SINGLE, json=body(400, 120, sample_count=8, seed=1), headers=b.auth)
            )
        )
        worker.start()
        try:
            poll(lambda: dp.engine.stats().running_rows + dp.engine.stats().queued_rows == 8)
            reply = b.client.post(SINGLE, json=body(30, 2, sample_count=2), headers=b.auth)
            out = error_of(reply, 503, "overloaded")
            assert reply.headers["retry-after"] == "1" and out["details"]["retry_after"] == 1
            # none of the batch fits: the whole call is 503 with Retry-After, so callers back off
            items = {"items": [body(30, 2, sample_count=2), body(20, 1, sample_count=2)]}
            whole = b.client.post("/v1/predict/batch", json=items, headers=b.auth)
            out = error_of(whole, 503, "overloaded")
            assert whole.headers["retry-after"] == "1" and out["details"]["retry_after"] == 1
        finally:
            worker.join(120)
        assert long[0].status_code == 200  # the admitted call completes
        assert b.count("kronos_requests_total", route=SINGLE, status="overloaded") == 1


def test_inference_timeout_is_504(tmp_path: Path) -> None:
    with _heavy(tmp_path, inference_timeout=0.3) as b:
        reply = b.client.post(SINGLE, json=body(400, 300, sample_count=32, seed=1), headers=b.auth)
        error_of(reply, 504, "deadline_exceeded")
        assert b.count("kronos_requests_total", route=SINGLE, status="timeout") == 1
        assert b.count("kronos_timeouts_total", endpoint="PredictSingle") == 1


def test_client_going_away_cancels_the_call_and_frees_the_engine(tmp_path: Path) -> None:
    """Through real uvicorn: the route notices the disconnect and cancels its dataplane call."""
    with _heavy(tmp_path, inference_timeout=3600) as b:  # long enough to admit the long request
        running = b.running
        dp = running.server.dataplane
        assert dp is not None
        app = build_rest_app(running.settings, running.server)
        http = HttpServer(app, "127.0.0.1", 0, grace=1)
        port = running.call(http.start())
        try:
            payload = json.dumps(body(400, 300, sample_count=32, seed=1)).encode()
            head = (
                f"POST {SINGLE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-Container-Name: {running.container}\r\nAuthorization: Bearer {running.key}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(head + payload)
                poll(lambda: dp.engine.stats().running_rows == 32)
            poll(lambda: dp.engine.stats().running_rows == 0, timeout=5)
            poll(lambda: b.count("kronos_requests_total", route=SINGLE, status="cancelled") == 1)
        finally:
            running.call(http.stop())


def test_unloaded_server_is_503(tmp_path: Path) -> None:
    with bridge(tmp_path, load=False) as b:
        reply = b.client.post(SINGLE, json=body(), headers=b.auth)
        error_of(reply, 503, "unavailable")
        assert reply.headers["retry-after"] == "1"
        assert b.count("kronos_requests_total", route=SINGLE, status="unavailable") == 1


def test_cancelled_is_499_and_internal_is_500_without_details(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    dp = bridged.running.server.dataplane
    assert dp is not None

    async def cancelled(*args: Any, **kwargs: Any) -> Any:
        raise CancelledError("the request was cancelled")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at 0xdeadbeef")

    monkeypatch.setattr(dp, "predict", cancelled)
    error_of(bridged.client.post(SINGLE, json=body(), headers=bridged.auth), 499, "cancelled")
    monkeypatch.setattr(dp, "predict", broken)
    out = error_of(bridged.client.post(SINGLE, json=body(), headers=bridged.auth), 500, "internal")
    assert "secret" not in out["message"] and out["details"] == {}
    assert bridged.count("kronos_requests_total", route=SINGLE, status="cancelled") == 1
    assert bridged.count("kronos_requests_total", route=SINGLE, status="error") == 1


def test_unknown_paths_and_methods_use_the_error_body(bridged: Bridged) -> None:
    error_of(bridged.client.get("/v1/nothing"), 404, "not_found")
    error_of(bridged.client.get(SINGLE), 405, "method_not_allowed")


def test_a_fresh_request_id_when_none_or_an_unsafe_one_is_sent(bridged: Bridged) -> None:
    ids = set()
    for headers in ({}, {"X-Request-ID": "bad id\twith spaces"}):
        reply = bridged.client.get("/v1/healthz", headers=headers)
        ids.add(reply.headers["x-request-id"])
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert (
        bridged.client.get("/v1/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"]
        == "abc-1"
    )
