"""The CDS Hooks protocol through the HTTP API: discovery, the two hooks, and what real clients send."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.http.context import EXTENSION_KEY
from tests.conftest import EXAMPLES
from tests.support.http import json_of

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "reference-examples"
SIGN = "/cds-services/lbp-imaging-order-sign"
SELECT = "/cds-services/lbp-imaging-order-select"


def example_request() -> dict[str, Any]:
    request: dict[str, Any] = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    return request


def service_request(resource_id: str, system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": resource_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/example-lbp-1"},
    }


def with_orders(request: dict[str, Any], *orders: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}
    return changed


def test_healthz_answers_without_auth(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert json_of(response) == {"status": "ok"}


def test_discovery_lists_one_service_per_order_hook_with_2_0_prefetch_tokens(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {service["hook"]: service for service in json_of(response)["services"]}
    assert set(services) == {"order-select", "order-sign"}
    assert services["order-select"]["id"] != services["order-sign"]["id"]
    for service in services.values():
        assert service["title"]
        assert service["description"]
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        for key in ("conditions", "observations", "medicationRequests", "procedures"):
            assert "patient={{context.patientId}}" in prefetch[key]


def test_order_sign_with_lumbar_mri_is_assessed_with_a_card_and_a_rating(client: FlaskClient) -> None:
    response = client.post(SIGN, json=example_request())
    assert response.status_code == 200
    body = json_of(response)
    assert len(body["cards"]) == 1
    card = body["cards"][0]
    extension = card["extension"]["lbp-imaging-cds"]
    assert extension["order"] == "ServiceRequest/draft-mri-1"
    assert extension["modality"] == "MRI"
    assert extension["procedure"] == "mri-lumbar-without-contrast"
    # History of breast cancer (Z85.3) puts the patient in ACR variant 7, where MRI is usually appropriate.
    assert "cancer-history" in extension["redFlags"]
    assert extension["appropriateness"] == "usually-appropriate"
    assert card["indicator"] == "info"
    # The system action annotates the draft order with the Argonaut PAMA rating and nothing else.
    (action,) = body["systemActions"]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "draft-mri-1"
    ratings = [e for e in action["resource"]["extension"] if e["url"].endswith("/pama-rating")]
    assert ratings[0]["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    # The Sandbox reads system actions only from the pre-2.0 location.
    assert body["extension"]["systemActions"] == body["systemActions"]


def test_order_sign_without_lumbar_imaging_answers_no_cards_and_fetches_nothing(client: FlaskClient) -> None:
    chest = service_request("cxr", "http://www.ama-assn.org/go/cpt", "71046")
    request = with_orders(example_request(), chest)
    # A fhirServer nobody could reach: if the service tried to fetch, it would have to report a failure.
    request.pop("prefetch")
    request["fhirServer"] = "http://127.0.0.1:9/fhir"
    request["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "subject": "x", "scope": "s"}
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert json_of(response) == {"cards": []}


def test_spec_library_order_sign_example_without_imaging_gets_no_cards(client: FlaskClient) -> None:
    context = json.loads((REFERENCE / "library101_order-sign_block0.json").read_text())["context"]
    request = {
        "hook": "order-sign",
        "hookInstance": "a0b1c2d3-0000-4000-8000-000000000001",
        "context": context,
    }
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert json_of(response) == {"cards": []}


def test_order_select_judges_only_the_selected_orders(client: FlaskClient) -> None:
    mri = service_request("mri", "http://www.ama-assn.org/go/cpt", "72148")
    xray = service_request("xray", "http://www.ama-assn.org/go/cpt", "72100")
    request = with_orders(example_request(), mri, xray)
    request["hook"] = "order-select"
    request["context"]["selections"] = ["ServiceRequest/xray"]
    response = client.post(SELECT, json=request)
    assert response.status_code == 200
    orders = [card["extension"]["lbp-imaging-cds"]["order"] for card in json_of(response)["cards"]]
    assert orders == ["ServiceRequest/xray"]
    assert [a["resource"]["id"] for a in json_of(response)["systemActions"]] == ["xray"]


def test_order_sign_judges_every_lumbar_order(client: FlaskClient) -> None:
    mri = service_request("mri", "http://www.ama-assn.org/go/cpt", "72148")
    ct = service_request("ct", "http://loinc.org", "30620-9")
    response = client.post(SIGN, json=with_orders(example_request(), mri, ct))
    assert response.status_code == 200
    orders = sorted(card["extension"]["lbp-imaging-cds"]["order"] for card in json_of(response)["cards"])
    assert orders == ["ServiceRequest/ct", "ServiceRequest/mri"]


def test_sandbox_first_call_with_an_empty_order_gets_no_cards(client: FlaskClient) -> None:
    """The CDS Hooks Sandbox calls before a study is picked: `code.coding: [{}]`, `reasonCode: []`."""
    empty = {
        "resourceType": "ServiceRequest",
        "id": "example-request-id",
        "status": "draft",
        "intent": "plan",
        "code": {"coding": [{}]},
        "reasonCode": [],
        "subject": {"reference": "Patient/example-lbp-1"},
    }
    request = with_orders(example_request(), empty)
    request["hook"] = "order-select"
    request["context"]["selections"] = ["ServiceRequest/example-request-id"]
    response = client.post(SELECT, json=request)
    assert response.status_code == 200
    assert json_of(response) == {"cards": []}


def test_draft_orders_bundle_without_type_is_read(client: FlaskClient) -> None:
    request = example_request()
    assert "type" not in request["context"]["draftOrders"]
    response = client.post(SIGN, json=request)
    assert len(json_of(response)["cards"]) == 1


def test_missing_patient_without_fhir_server_is_412_naming_what_is_missing(client: FlaskClient) -> None:
    request = example_request()
    del request["prefetch"]["patient"]
    response = client.post(SIGN, json=request)
    assert response.status_code == 412
    assert json_of(response)["error"] == "precondition-failed"
    assert "patient" in json_of(response)["message"]
    assert "conditions" not in json_of(response)["message"]


def test_pama_connectathon_request_without_prefetch_or_token_is_412(client: FlaskClient) -> None:
    """Argonaut PAMA scenario 1: a lumbar CT with only a fhirServer (no token, no prefetch)."""
    request = json.loads((REFERENCE / "pama_scenario-01-outbound-request.json").read_text())
    response = client.post("/cds-services/lbp-imaging-order-select", json=request)
    assert response.status_code == 412
    assert "patient and conditions" in json_of(response)["message"]


def test_missing_observations_are_reported_as_not_checked_not_as_no_fever(client: FlaskClient) -> None:
    request = example_request()
    del request["prefetch"]["observations"]
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    card = json_of(response)["cards"][0]
    assert "observations" in card["detail"].lower()
    assert "could not be checked" in card["detail"].lower() or "not checked" in card["detail"].lower()


def test_null_prefetch_means_the_client_has_no_such_data(client: FlaskClient) -> None:
    request = example_request()
    request["prefetch"]["procedures"] = None
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert len(json_of(response)["cards"]) == 1


def test_unknown_extra_fields_are_tolerated(client: FlaskClient) -> None:
    request = example_request()
    request["extension"] = {"com.example.flag": True}
    request["context"]["encounterId"] = "enc-1"
    request["context"]["com.example.extra"] = {"x": 1}
    response = client.post(SIGN, json=request)
    assert response.status_code == 200


def test_draft_order_without_an_id_gets_a_card_but_no_action_on_it(client: FlaskClient) -> None:
    """Some clients send draft orders before the EHR has given them an id."""
    order = service_request("x", "http://www.ama-assn.org/go/cpt", "72148")
    del order["id"]
    response = client.post(SIGN, json=with_orders(example_request(), order))
    assert response.status_code == 200
    (card,) = json_of(response)["cards"]
    assert "suggestions" not in card
    assert "systemActions" not in json_of(response)


def test_the_request_log_line_names_the_rules_that_fired_and_the_outcome(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="lbp.request"):
        response = client.post(SIGN, json=example_request())
    assert response.status_code == 200
    (line,) = [record for record in caplog.records if record.name == "lbp.request"]
    assert line.__dict__["outcome"] == "assessed"
    assert line.__dict__["variants"] == ["V7"]
    assert line.__dict__["redFlags"] == ["cancer-history", "age-over-50"]
    assert line.__dict__["appropriateness"] == ["usually-appropriate"]
    assert line.__dict__["hookInstance"] == example_request()["hookInstance"]
    assert (
        line.__dict__["assessmentId"]
        == json_of(response)["cards"][0]["extension"]["lbp-imaging-cds"]["assessmentId"]
    )


def test_a_withheld_rating_is_not_recorded_as_a_rating(app: Flask, client: FlaskClient) -> None:
    """Observations missing: the verdict on this MRI could change, so no rating is written into the order,
    and the audit record must not claim one either."""
    request = example_request()
    del request["prefetch"]["observations"]
    conditions = request["prefetch"]["conditions"]["entry"]
    conditions[:] = [e for e in conditions if e["resource"]["id"] != "hx-breast-cancer"]
    body = json_of(client.post(SIGN, json=request))
    assert "systemActions" not in body
    assessment_id = body["cards"][0]["extension"]["lbp-imaging-cds"]["assessmentId"]
    record = app.extensions[EXTENSION_KEY].store.get_assessment(assessment_id)
    (order,) = record["orders"]
    assert order.get("pamaRating") is None
    assert order["appropriateness"] == "usually-not-appropriate"


def test_duplicate_ids_among_orders_that_are_not_lumbar_imaging_are_not_our_business(
    client: FlaskClient,
) -> None:
    medication = {"resourceType": "MedicationRequest", "id": "1", "status": "draft", "intent": "order"}
    request = with_orders(example_request(), medication, dict(medication))
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert json_of(response) == {"cards": []}
