"""GET / and GET /v1: the index; the OpenAPI security schemes match which routes need credentials."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.rest_bridge.conftest import Bridged
from tests.rest_bridge.helpers import body
from tests.rest_bridge.test_backtest import backtest_body

CREDENTIALED = {
    ("post", "/v1/predict/single"),
    ("post", "/v1/predict/batch"),
    ("post", "/v1/backtest"),
    ("get", "/v1/models"),
}


@pytest.mark.parametrize("path", ["/", "/v1"])
def test_the_index_names_the_service_and_links_without_credentials(bridged: Bridged, path: str) -> None:
    reply = bridged.client.get(path)
    assert reply.status_code == 200, reply.text
    index = reply.json()
    assert index["name"] == "Kronos Serve"
    assert index["version"] == version("kronos-serve")
    assert index["api_version"] == "v1"
    assert index["grpc_service"] == "kronos.v1.KronosPredictor"
    assert index["links"] == {
        "docs": "/v1/docs",
        "openapi": "/v1/openapi.json",
        "healthz": "/v1/healthz",
        "readyz": "/v1/readyz",
        "metrics": "/v1/metrics",
        "models": "/v1/models",
    }
    for name, link in index["links"].items():
        expected = 401 if name == "models" else 200
        assert bridged.client.get(link).status_code == expected, link
    assert bridged.client.get(index["links"]["models"], headers=bridged.auth).status_code == 200


def test_other_paths_stay_404_and_leave_no_metric_labels(bridged: Bridged) -> None:
    for path in ("/v2", "/v1/nothing", "/index.html", "/v1/predict", "/v1/docs/static/missing.js"):
        assert bridged.client.get(path).status_code == 404, path
    for path in ("/", "/v1", "/v1/docs", "/v1/docs/static/swagger-ui.css"):
        assert bridged.client.get(path).status_code == 200, path
    routes = {
        sample.labels["route"]
        for family in bridged.running.metrics.registry.collect()
        for sample in family.samples
        if "route" in sample.labels
    }
    # the request metrics are labelled with the predictor routes only, never with a path asked for
    assert all(
        route.startswith(("/kronos.v1.KronosPredictor/", "/v1/predict/", "/v1/models", "/v1/backtest"))
        for route in routes
    ), routes
    assert not routes & {"/", "/v1", "/v2", "/v1/nothing", "/v1/docs"}


def test_security_schemes_are_declared_and_required_together(bridged: Bridged) -> None:
    doc = bridged.client.get("/v1/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["containerName"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Container-Name",
        "description": schemes["containerName"]["description"],
    }
    assert schemes["bearerKey"]["type"] == "http" and schemes["bearerKey"]["scheme"] == "bearer"
    assert "security" not in doc  # no global requirement: health, metrics and docs need none
    declared = set()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "security" in operation:
                # one requirement object naming both: AND (two objects would mean either one)
                assert operation["security"] == [{"containerName": [], "bearerKey": []}], path
                declared.add((method, path))
    assert declared == CREDENTIALED


def test_the_declared_security_is_what_the_routes_enforce(bridged: Bridged) -> None:
    """Without credentials: 401 exactly where the document requires them."""
    doc = bridged.client.get("/v1/openapi.json").json()
    batch = {"items": [body(30, 2), body(30, 2, start=40)]}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            payloads = {"/v1/predict/batch": batch, "/v1/backtest": backtest_body(origins=2)}
            payload = payloads.get(path, body(30, 2)) if method == "post" else None
            reply = bridged.client.request(method, path, json=payload)
            if "security" in operation:
                assert reply.status_code == 401, (method, path, reply.text)
                with_auth = bridged.client.request(method, path, json=payload, headers=bridged.auth)
                assert with_auth.status_code == 200, (method, path, with_auth.text)
            else:
                assert reply.status_code == 200, (method, path, reply.text)
