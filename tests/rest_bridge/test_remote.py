"""The standalone bridge (``create_app(settings, grpc_target=...)``): the same answers as the
in-process API, through the remote dataplane, with auth and rate limits on the gRPC server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from kronos_bridge.app import create_app
from kronos_server.settings import load_settings
from tests.rest_bridge.conftest import Bridged, bridge
from tests.rest_bridge.helpers import body, poll

SINGLE = "/v1/predict/single"


@contextmanager
def standalone(tmp: Path, **overrides: Any) -> Iterator[tuple[Bridged, TestClient]]:
    """A server with its in-process API, and a standalone bridge in front of its gRPC port."""
    with bridge(tmp, **overrides) as b:
        settings = load_settings(dev_keys_dir=tmp / "bridge-dev")
        with TestClient(create_app(settings, grpc_target=b.running.target)) as client:
            yield b, client


def test_the_same_answers_as_in_process(tmp_path: Path) -> None:
    with standalone(tmp_path) as (b, remote):
        payload = body(40, 4, sample_count=2, seed=3, quantiles=[0.1, 0.9])
        local = b.client.post(SINGLE, json=payload, headers=b.auth)
        far = remote.post(SINGLE, json=payload, headers={**b.auth, "X-Request-ID": "far-1"})
        assert local.status_code == far.status_code == 200, far.text
        assert far.json() == local.json()
        assert far.headers["x-request-id"] == "far-1"
        items = {"items": [body(20, 1, seed=1), body(20, 1, top_p=1.5), {"candles": 1}]}
        local_slots = b.client.post("/v1/predict/batch", json=items, headers=b.auth).json()
        far_slots = remote.post("/v1/predict/batch", json=items, headers=b.auth).json()
        strip = [{k: v for k, v in s.items() if k != "request_id"} for s in far_slots]
        assert strip == [{k: v for k, v in s.items() if k != "request_id"} for s in local_slots]
        assert far_slots[1]["status"] == 422 and far_slots[1]["details"]["field"] == "overrides.top_p"
        models = remote.get("/v1/models", headers=b.auth).json()
        assert models == b.client.get("/v1/models", headers=b.auth).json()


def test_errors_of_the_server_come_back_as_the_same_answers(tmp_path: Path) -> None:
    with standalone(tmp_path, rate_limit="3/minute") as (b, remote):
        payload = body(20, 1)
        payload["candles"][5]["close"] = -1.0
        out = remote.post(SINGLE, json=payload, headers=b.auth)
        assert out.status_code == 422 and out.json()["details"]["field"] == "candles[5].close"
        assert out.json()["message"].startswith("candles[5].close:")
        assert remote.post(SINGLE, json=body(), headers={"X-Container-Name": "tester"}).status_code == 401
        assert remote.get("/v1/models", headers=b.auth).status_code == 200
        assert remote.get("/v1/models", headers=b.auth).status_code == 200
        limited = remote.get("/v1/models", headers=b.auth)
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
        assert limited.headers["x-ratelimit-limit"] == "3" and int(limited.headers["retry-after"]) >= 1
        # the server authenticated and rate-limited: its registry holds the refusals
        poll(lambda: b.count("kronos_rate_limit_hits_total", container="tester") == 1)
        assert b.count("kronos_security_events_total", event="unauthorized", container="tester") == 1
