"""The shipped Prometheus config, alert rules and Grafana dashboard read metrics the service exports."""

from __future__ import annotations

import json
import re

import yaml

from service import metrics
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def _exported() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        describe = getattr(value, "describe", None)
        if callable(describe) and hasattr(value, "_name"):
            for family in describe():
                names.add(family.name)
                names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))
    return names


def _referenced(text: str) -> set[str]:
    return set(re.findall(r"\blbp_[a-z_]+", text))


def test_every_metric_the_dashboard_and_alerts_read_is_exported() -> None:
    exported = _exported()
    assert "lbp_http_requests_total" in exported
    dashboard = json.loads((EXAMPLES / "grafana" / "lbp-imaging-cds-dashboard.json").read_text())
    expressions = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    alerts = (EXAMPLES / "prometheus" / "lbp-imaging-cds-alerts.yml").read_text()
    for text in (expressions, alerts):
        referenced = _referenced(text)
        assert referenced
        assert referenced - exported == set()


def test_prometheus_scrapes_the_service_with_a_bearer_token_and_loads_the_alerts() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert config["rule_files"] == ["/etc/prometheus/lbp-imaging-cds-alerts.yml"]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounted = {volume["target"] for volume in compose["services"]["prometheus"]["volumes"]}
    assert set(config["rule_files"]) <= mounted
