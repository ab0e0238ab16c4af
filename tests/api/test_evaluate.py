"""`POST /evaluate`: the REST twin of the hooks, answering from one Bundle as of a given date."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from tests.api.test_hooks import SIGN, example_request
from tests.conftest import EXAMPLES
from tests.support.http import json_of


def example_bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads((EXAMPLES / "evaluate-bundle.json").read_text())
    return bundle


def test_evaluate_rates_the_order_in_the_bundle(client: FlaskClient) -> None:
    response = client.post("/evaluate?asOf=2026-11-26", json=example_bundle())
    assert response.status_code == 200
    answer = json_of(response)
    assert answer["asOf"] == "2026-11-26"
    assert answer["patient"]["reference"] == "Patient/example-lbp-1"
    assert answer["patient"]["ageYears"] == 58
    assert answer["episode"]["symptomDays"] == 21
    flags = {flag["id"]: flag for flag in answer["redFlags"]}
    assert set(flags) == {"cancer-history", "age-over-50"}
    evidence = flags["cancer-history"]["evidence"][0]
    assert evidence["reference"] == "Condition/hx-breast-cancer"
    assert evidence["code"] == "Z85.3"
    assert [variant["id"] for variant in answer["variants"]] == ["V7"]
    (order,) = answer["orders"]
    assert order["order"] == "ServiceRequest/draft-mri-1"
    assert order["appropriateness"] == "usually-appropriate"
    assert order["pamaRating"] == "appropriate"
    assert answer["modalities"]["MRI"]["appropriateness"] == "usually-appropriate"


def test_evaluate_is_reproducible_with_as_of(client: FlaskClient) -> None:
    first = json_of(client.post("/evaluate?asOf=2026-12-20", json=example_bundle()))
    second = json_of(client.post("/evaluate?asOf=2026-12-20", json=example_bundle()))
    assert first["episode"]["symptomDays"] == 45
    first.pop("assessmentId")
    second.pop("assessmentId")
    assert first == second


def test_evaluate_without_orders_still_says_which_modality_is_recommended(client: FlaskClient) -> None:
    bundle = example_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "ServiceRequest"]
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=bundle))
    assert answer["orders"] == [] or "orders" not in answer
    assert set(answer["modalities"]) == {"XR", "MRI", "CT"}
    assert answer["modalities"]["MRI"]["procedure"] == "mri-lumbar-without-contrast"


def test_evaluate_reports_what_was_not_supplied(client: FlaskClient) -> None:
    bundle = example_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Observation"]
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=bundle))
    gap_text = json.dumps(answer["dataGaps"]).lower()
    assert "observation" in gap_text


def test_card_extension_and_evaluate_agree_on_the_same_record(client: FlaskClient) -> None:
    card = json_of(client.post(SIGN, json=example_request()))["cards"][0]["extension"]["lbp-imaging-cds"]
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=example_bundle()))
    (order,) = answer["orders"]
    assert card["appropriateness"] == order["appropriateness"]
    assert card["procedure"] == order["procedure"]
    assert card["modality"] == order["modality"]
    assert card["variants"] == [variant["id"] for variant in answer["variants"]]
    assert card["redFlags"] == [flag["id"] for flag in answer["redFlags"]]
    assert card["rulesVersion"] == answer["rulesVersion"]
    assert card["urgent"] == answer["urgent"]


def test_a_birth_date_after_as_of_leaves_the_age_unknown_not_negative(client: FlaskClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "2030-01-01"}}],
    }
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=bundle))
    assert answer["patient"]["ageYears"] is None
    assert "birthdate-after-assessment-date" in [gap["id"] for gap in answer["dataGaps"]]
    assert "age-over-50" in [flag["id"] for flag in answer["uncheckedRedFlags"]]


def test_a_patient_id_that_is_not_a_fhir_id_gives_no_reference(client: FlaskClient) -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "a b"}}]}
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=bundle))
    assert answer["patient"]["reference"] is None


def test_a_gender_outside_fhir_administrative_gender_is_not_reported_as_sex(client: FlaskClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p", "gender": "F"}}],
    }
    answer = json_of(client.post("/evaluate?asOf=2026-11-26", json=bundle))
    assert answer["patient"]["sex"] is None
