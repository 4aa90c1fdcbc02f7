"""Logs of a real REST -> gRPC request: JSON lines, one request_id across both, no key."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from kronos_server.logs import configure_logging
from tests.rest_bridge.conftest import bridge
from tests.rest_bridge.helpers import body, poll

SINGLE = "/v1/predict/single"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_request_id_is_shared_rest_to_grpc_and_no_key_is_logged(tmp_path: Path) -> None:
    stream = io.StringIO()
    with bridge(tmp_path, rate_limit="2/minute") as b:
        configure_logging("DEBUG", "json", stream)
        reply = b.client.post(SINGLE, json=body(30, 2), headers={**b.auth, "X-Request-ID": "req-obs-1"})
        assert reply.status_code == 200
        b.client.get("/v1/models", headers={**b.auth, "X-Request-ID": "req-obs-2"})
        limited = b.client.get("/v1/models", headers={**b.auth, "X-Request-ID": "req-obs-3"})
        assert limited.status_code == 429
        poll(lambda: sum(r.get("request_id") == "req-obs-3" for r in records(stream)) >= 2)
        key = b.running.key
    out = records(stream)
    assert key and key not in stream.getvalue()
    assert '"close"' not in stream.getvalue()  # no payloads
    for r in out:
        assert {"timestamp", "level", "logger", "message"} <= set(r)
        assert r["timestamp"].endswith("Z")
    mine = [r for r in out if r.get("request_id") == "req-obs-1"]
    rest = [r for r in mine if r["message"] == "http request finished"]
    grpc_line = [r for r in mine if r["message"] == "request finished"]
    assert len(rest) == 1 and len(grpc_line) == 1
    assert rest[0]["status"] == "success" and rest[0]["endpoint"] == "PredictSingle"
    g = grpc_line[0]
    assert g["status"] == "success" and g["container"] == b.running.container
    assert g["endpoint"] == "PredictSingle" and g["series_id"] == "s0"
    assert g["rows"] == 30 and g["pred_len"] == 2 and g["latency_ms"] >= 0
    limited_lines = [r for r in out if r.get("request_id") == "req-obs-3"]
    assert limited_lines and all(r["level"] == "WARNING" for r in limited_lines)
