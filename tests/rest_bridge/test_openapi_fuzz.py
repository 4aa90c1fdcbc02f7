"""schemathesis against /v1/openapi.json (ASGI, lifespan on): no generated input gets a 5xx,
and every answer is documented and matches its documented schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kronos_bridge.app import create_app
from kronos_server.app import build_bridge_app
from kronos_server.settings import load_settings
from tests.servers import RunningServer, start_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("fuzz"), bridge_token=TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rest_app(running: RunningServer) -> Any:
    return build_bridge_app(running.settings, running.server, TOKEN)


# the document alone, from an app that is never started; the calls go to `rest_app`
schema = schemathesis.openapi.from_dict(create_app(load_settings(), grpc_target="127.0.0.1:1").openapi())


@pytest.mark.slow
@pytest.mark.timeout(900)
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_answers(case: Any, running: RunningServer, rest_app: Any) -> None:
    auth = {"X-Container-Name": running.container, "Authorization": f"Bearer {running.key}"}
    case.call_and_validate(app=rest_app, headers=auth, checks=CHECKS)
