"""The real app, every documented operation and error, through ContractClient.

Each call below fails the test if its answer breaks openapi.yaml or a card rule, so this is one journey
over the whole contract with the real parts (SQLite store, rules, mappings), not a fake app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.contract import ContractClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADMIN_TOKEN = "contract-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIGN = "/cds-services/lbp-imaging-order-sign"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return document


@pytest.fixture
def contract_client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    client = make_client(admin_token=ADMIN_TOKEN, max_body_bytes=64 * 1024)
    assert isinstance(client, ContractClient), "API tests must validate their answers against openapi.yaml"
    return client


def test_a_hook_call_its_feedback_and_its_audit_record_conform(contract_client: FlaskClient) -> None:
    assert contract_client.get("/healthz").status_code == 200
    services = contract_client.get("/cds-services").json
    assert services is not None
    assert {service["id"] for service in services["services"]} == {
        "lbp-imaging-order-select",
        "lbp-imaging-order-sign",
    }

    answer = contract_client.post(SIGN, json=example("order-sign-lumbar-mri.json")).json
    assert answer is not None
    card = answer["cards"][0]
    verdict = card["extension"]["lbp-imaging-cds"]

    feedback_item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": "2026-11-26T12:01:00Z"}
    if "suggestions" in card:
        feedback_item |= {
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        }
    else:
        feedback_item |= {"outcome": "overridden"}
    receipt = contract_client.post(f"{SIGN}/feedback", json={"feedback": [feedback_item]}).json
    assert receipt == {"received": 1, "linked": 1, "unknownCards": []}

    record = contract_client.get(f"/assessments/{verdict['assessmentId']}", headers=ADMIN).json
    assert record is not None
    assert record["orders"][0]["feedback"][0]["outcome"] == feedback_item["outcome"]
    report = contract_client.get("/reports/summary?from=2026-11-01&to=2026-12-01", headers=ADMIN).json
    assert report is not None
    assert report["assessments"] == 1


def test_an_evaluate_call_conforms(contract_client: FlaskClient) -> None:
    response = contract_client.post("/evaluate?asOf=2026-11-26", json=example("evaluate-bundle.json"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "options", "status"),
    [
        ("get", "/no/such/endpoint", {}, 404),
        ("delete", "/healthz", {}, 405),
        ("get", "/evaluate", {}, 405),
        ("post", "/cds-services/no-such-service", {"json": {"hook": "order-sign"}}, 404),
        ("post", SIGN, {"data": b"{not json", "content_type": "application/json"}, 400),
        ("post", SIGN, {"json": {"hook": "order-sign"}}, 400),
        ("post", "/evaluate", {"data": b"<Bundle/>", "content_type": "application/xml"}, 415),
        ("post", "/evaluate?asOf=yesterday", {"json": {"resourceType": "Bundle"}}, 400),
        ("post", "/evaluate", {"data": b"[" * 70_000, "content_type": "application/json"}, 413),
        ("get", "/assessments/some-id", {}, 401),
        ("get", "/assessments/00000000-0000-0000-0000-00000000dead", {"headers": ADMIN}, 404),
        ("get", "/reports/summary?from=last-tuesday", {"headers": ADMIN}, 400),
        (
            "options",
            SIGN,
            {"headers": {"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"}},
            200,
        ),
    ],
)
def test_error_answers_conform(
    contract_client: FlaskClient, method: str, path: str, options: dict[str, Any], status: int
) -> None:
    assert getattr(contract_client, method)(path, **options).status_code == status


def test_a_call_whose_patient_data_cannot_be_had_is_412_and_conforms(contract_client: FlaskClient) -> None:
    request = example("order-sign-lumbar-mri.json")
    request.pop("prefetch", None)
    request.pop("fhirServer", None)
    request.pop("fhirAuthorization", None)
    assert contract_client.post(SIGN, json=request).status_code == 412
