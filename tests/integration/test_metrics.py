"""Prometheus metrics scraped from a running multi-worker gunicorn: the counts of the calls this test made,
summed over the workers; readiness; and no label that carries a patient, a clinician or a token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLES
from tests.support.gunicorn_server import running_gunicorn

pytestmark = pytest.mark.slow
METRICS_TOKEN = "metrics-token-0123456789abcdef"
SIGN = "/cds-services/lbp-imaging-order-sign"
CALLS = 24


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("metrics")
    with running_gunicorn(folder, {"CDS_METRICS_TOKEN": METRICS_TOKEN}) as (_, url):
        yield url


def _request(index: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    body["hookInstance"] = f"00000000-0000-4000-8000-{index:012d}"
    return body


def _samples(text: str, name: str) -> dict[str, float]:
    """`name{labels} value` lines -> {labels: value}."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_metrics_add_up_over_workers_and_name_no_patient(base_url: str) -> None:
    session = requests.Session()
    for index in range(CALLS):
        assert session.post(base_url + SIGN, json=_request(index), timeout=10).status_code == 200
    assert (
        session.post(base_url + SIGN, data=b"{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )

    response = requests.get(
        base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    requests_total = _samples(text, "lbp_http_requests_total")
    route = 'method="POST",route="/cds-services/<service_id>",status="200"'
    assert requests_total[f"{{{route}}}"] == CALLS
    assert requests_total['{method="POST",route="/cds-services/<service_id>",status="400"}'] == 1
    calls = _samples(text, "lbp_hook_calls_total")
    assert calls['{outcome="assessed",service="lbp-imaging-order-sign"}'] == CALLS
    judged = _samples(text, "lbp_hook_orders_judged_total")
    assert sum(judged.values()) == CALLS  # one lumbar MRI per call
    assert _samples(text, "lbp_audit_store_write_duration_seconds_count")[""] == CALLS
    example = _request(0)
    for secret in (example["context"]["patientId"], example["context"]["userId"], METRICS_TOKEN):
        assert secret not in text


def test_metrics_need_the_token(base_url: str) -> None:
    assert requests.get(base_url + "/metrics", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(base_url + "/metrics", headers=wrong, timeout=10).status_code == 401


def test_readiness_checks_the_database_schema_and_rules(base_url: str) -> None:
    response = requests.get(base_url + "/readyz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["schema"] == "ok"
    assert body["checks"]["rules"].startswith("ok (")


def test_liveness_stays_a_plain_ok(base_url: str) -> None:
    assert requests.get(base_url + "/healthz", timeout=10).json() == {"status": "ok"}


def test_a_server_started_without_a_metrics_or_admin_token_has_no_metrics(tmp_path: Path) -> None:
    with running_gunicorn(tmp_path, {}) as (_, url):
        assert requests.get(url + "/metrics", timeout=10).status_code == 404
