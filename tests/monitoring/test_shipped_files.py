"""The monitoring files are complete: every alert documented, every request panel filtered."""

from __future__ import annotations

import yaml

from tests.monitoring.shipped import (
    ROUTE_METRICS,
    SCRAPE,
    alert_rules,
    dashboard,
    panel_queries,
    panels,
)

EXPECTED_ALERTS = {
    "KronosServiceDown",
    "KronosHighErrorRate",
    "KronosModelNotLoaded",
    "KronosHighLatency",
    "KronosHighTimeoutRate",
    "KronosHighMemoryUsage",
    "KronosHighConcurrency",
    "KronosExcessiveRateLimiting",
    "KronosSlowInference",
    "KronosLowThroughput",
    "KronosSecurityEvents",
    "KronosEngineQueueSaturation",
    "KronosOverloadRejections",
}


def test_every_alert_is_documented() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        for key in ("summary", "description", "impact", "action"):
            assert rule["annotations"].get(key, "").strip(), (rule["alert"], key)


def test_error_alert_counts_only_server_faults() -> None:
    rule = next(r for r in alert_rules() if r["alert"] == "KronosHighErrorRate")
    assert 'status="error"' in rule["expr"]
    for client_outcome in ("invalid", "unauthorized", "rate_limited", "too_large", "overloaded"):
        assert client_outcome not in rule["expr"]


def test_model_and_memory_alerts_use_their_own_signals() -> None:
    rules = {r["alert"]: r["expr"] for r in alert_rules()}
    assert "kronos_model_loaded == 0" in rules["KronosModelNotLoaded"]
    memory = rules["KronosHighMemoryUsage"]
    assert "process_resident_memory_bytes" in memory
    assert "kronos_memory_limit_bytes > 0" in memory


def test_every_alert_has_a_unit_test() -> None:
    from tests.monitoring.shipped import MONITORING

    tested: set[str] = set()
    for path in (MONITORING / "prometheus" / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert tested == EXPECTED_ALERTS


def test_scrape_config() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "kronos-api"
    assert job["metrics_path"] == "/v1/metrics"
    assert job["scrape_interval"] == "15s"
    assert config["rule_files"] == ["kronos-alerts.yml"]


def test_datasource_is_a_variable() -> None:
    dash = dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dash["schemaVersion"] >= 36
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_route_variable_filters_every_request_panel() -> None:
    route = next(v for v in dashboard()["templating"]["list"] if v["name"] == "route")
    assert route["query"]["query"] == "label_values(kronos_requests_total, route)"
    assert route["includeAll"] and route["allValue"] == ".*"
    filtered = 0
    for title, expr in panel_queries():
        for match in ROUTE_METRICS.finditer(expr):
            selector = expr[match.end() :]
            assert selector.startswith("{") and 'route=~"$route"' in selector.split("}")[0], (title, expr)
            filtered += 1
    assert filtered >= 5


def test_the_guide_panels_and_engine_panels_are_there() -> None:
    titles = {p["title"] for p in panels()}
    for needed in (
        "Request rate by route and status",
        "Total request rate",
        "p95 latency",
        "Latency p50 / p95 / p99",
        "Error and timeout rate",
        "Concurrent requests",
        "Model inference time",
        "Input size (candles)",
        "Security events",
        "Engine queue depth",
        "Running rows",
        "Rows per step",
        "Step time by phase",
        "Queue wait",
        "Overload rejections",
    ):
        assert needed in titles
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
