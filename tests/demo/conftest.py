"""The demo room under the Flask test client: the app with CDS_DEMO on, and the EHR's part the page plays
(discovery -> prefetch from the demo FHIR server -> a hook call), done here in Python."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from fhir_mappings import imaging_orders

PRACTITIONER = "Practitioner/demo-clinician"


@pytest.fixture
def demo(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client(demo=True, admin_token="demo-admin-token-0123456789")


def json_of(response: Any) -> Any:
    assert response.is_json, response.get_data(as_text=True)[:300]
    return response.get_json()


def services(client: FlaskClient) -> dict[str, dict[str, Any]]:
    return {service["hook"]: service for service in json_of(client.get("/cds-services"))["services"]}


def prefetch_for(
    client: FlaskClient, service: dict[str, Any], patient_id: str, keys: list[str] | None = None
) -> dict[str, Any]:
    """Each discovery template filled and read from the demo FHIR server, as the page (and the Sandbox) do,
    leaving out what the demo EHR does not share for the patient (its `prefetchWithheld`)."""
    prefetch = {}
    withheld = withheld_keys(client, patient_id)
    for key, template in service["prefetch"].items():
        if (keys is not None and key not in keys) or key in withheld:
            continue
        query = template.replace("{{context.patientId}}", quote(patient_id))
        response = client.get(f"/demo/fhir/{query}")
        assert response.status_code == 200, (key, response.get_data(as_text=True))
        prefetch[key] = json_of(response)
    return prefetch


def withheld_keys(client: FlaskClient, patient_id: str) -> set[str]:
    listed = json_of(client.get("/demo/api/patients"))["patients"]
    return {key for patient in listed if patient["id"] == patient_id for key in patient["prefetchWithheld"]}


def draft_order(
    client: FlaskClient, patient_id: str, procedure: str, n: int = 1, reason: str | None = None
) -> Any:
    query = f"patient={quote(patient_id)}&procedure={quote(procedure)}&n={n}"
    if reason:
        query += f"&reason={quote(reason)}"
    response = client.get(f"/demo/api/draft-order?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return json_of(response)


def hook_call(
    client: FlaskClient,
    hook: str,
    patient_id: str,
    orders: list[dict[str, Any]],
    *,
    prefetch_keys: list[str] | None = None,
    fhir_server: str | None = None,
) -> Any:
    service = services(client)[hook]
    context: dict[str, Any] = {
        "userId": PRACTITIONER,
        "patientId": patient_id,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in orders],
        },
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{orders[-1]['id']}"]
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch_for(client, service, patient_id, prefetch_keys),
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "demo-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "lbp-imaging-cds",
        }
    response = client.post(f"/cds-services/{service['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return json_of(response)


def card_facts(card: dict[str, Any]) -> dict[str, Any]:
    """What an index expectation speaks about, read from a card."""
    facts = card["extension"]["lbp-imaging-cds"]
    found: dict[str, Any] = {
        "indicator": card["indicator"],
        "appropriateness": facts.get("appropriateness"),
        "urgent": facts.get("urgent"),
        "variants": facts.get("variants", []),
        "redFlags": sorted(facts.get("redFlags", [])),
    }
    suggestions = card.get("suggestions", [])
    found["suggests"] = suggested_procedure(suggestions[0]) if suggestions else None
    return found


def suggested_procedure(suggestion: dict[str, Any]) -> str | None:
    """The lumbar imaging procedure a suggestion orders instead (by the project's order value sets), or
    "physical-therapy" for a therapy referral."""
    for action in suggestion.get("actions", []):
        if action["type"] in ("create", "update"):
            resource = action["resource"]
            (order,) = imaging_orders({"resourceType": "Bundle", "entry": [{"resource": resource}]}) or (
                None,
            )
            if order is not None:
                return order.procedure
            codes = {coding["code"] for coding in resource["code"]["coding"]}
            assert codes & {"97161", "91251008"}, (
                f"a suggestion ordering neither imaging nor therapy: {codes}"
            )
            return "physical-therapy"
    return None
