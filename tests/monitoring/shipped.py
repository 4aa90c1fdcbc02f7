"""The shipped monitoring files (monitoring/): dashboard queries and alert rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DASHBOARD = MONITORING / "grafana" / "kronos-dashboard.json"
ALERTS = MONITORING / "prometheus" / "kronos-alerts.yml"
SCRAPE = MONITORING / "prometheus" / "prometheus-scrape-config.yml"
# the request metrics every request panel must filter with the $route variable
ROUTE_METRICS = re.compile(r"\bkronos_(requests_total|request_duration_seconds\w*)\b")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p.get("type") != "row"]


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel."""
    return [(p["title"], t["expr"]) for p in panels() for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def substitute(expr: str) -> str:
    """Grafana's variables as Prometheus sees them with "All" routes selected."""
    return expr.replace("$__rate_interval", "1m").replace("$route", ".*")
