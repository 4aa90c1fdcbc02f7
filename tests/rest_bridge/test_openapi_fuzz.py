"""schemathesis against /v1/openapi.json (ASGI, lifespan on): no generated input gets a 5xx
(``not_a_server_error``), and every answer is documented and matches its documented schema.
Afterwards the server is still ready, idle, has counted no fault, and forecasts a seeded
request exactly as it did before the fuzzing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kronos_bridge.app import create_app
from kronos_server.app import build_rest_app
from kronos_server.settings import load_settings
from tests.rest_bridge.helpers import body, poll
from tests.servers import RunningServer, start_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("fuzz"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rest_app(running: RunningServer) -> Any:
    return build_rest_app(running.settings, running.server)


KNOWN_GOOD = body(40, 4, start=100, sample_count=4, seed=7)


def _auth(running: RunningServer) -> dict[str, str]:
    return {"X-Container-Name": running.container, "Authorization": f"Bearer {running.key}"}


@pytest.fixture(scope="module")
def baseline(running: RunningServer, rest_app: Any) -> Any:
    """The seeded forecast before the fuzzing."""
    with TestClient(rest_app) as client:
        reply = client.post("/v1/predict/single", json=KNOWN_GOOD, headers=_auth(running))
    assert reply.status_code == 200, reply.text
    return reply.json()


# the document alone, from an app that is never started; the calls go to `rest_app`
schema = schemathesis.openapi.from_dict(create_app(load_settings(), grpc_target="127.0.0.1:1").openapi())


@pytest.mark.slow
@pytest.mark.timeout(900)
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_answers(
    case: Any, running: RunningServer, rest_app: Any, baseline: Any
) -> None:
    case.call_and_validate(app=rest_app, headers=_auth(running), checks=CHECKS)


@pytest.mark.slow
def test_after_the_fuzzing_the_server_answers_as_before(
    running: RunningServer, rest_app: Any, baseline: Any
) -> None:
    with TestClient(rest_app) as client:
        assert client.get("/v1/readyz").status_code == 200
        reply = client.post("/v1/predict/single", json=KNOWN_GOOD, headers=_auth(running))
    assert reply.status_code == 200 and reply.json() == baseline
    dp = running.server.dataplane
    assert dp is not None
    poll(lambda: dp.engine.stats().running_rows == 0 and dp.engine.stats().queued_rows == 0)
    statuses: dict[str, float] = {}
    for family in running.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "kronos_requests_total":
                key = sample.labels["status"]
                statuses[key] = statuses.get(key, 0.0) + sample.value
    assert statuses.get("error", 0) == 0, statuses
    assert statuses.get("success", 0) >= 2, statuses
