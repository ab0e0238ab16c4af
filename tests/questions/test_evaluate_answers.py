"""`POST /evaluate` with a QuestionnaireResponse in the Bundle: the same answers, the same meaning, without
the page (a triage app or a referral portal)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import EXAMPLES
from tests.questions.conftest import ADMIN, response_to

PATIENTS = EXAMPLES / "patients"

AS_OF = "2026-12-01"  # the sample Bundles' reference date


@pytest.fixture
def admin_client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client(admin_token=ADMIN["Authorization"].removeprefix("Bearer "))


def _bundle(*extra: dict[str, Any]) -> dict[str, Any]:
    """The patient without vitals, an MRI order, and `extra` resources."""
    record = json.loads((PATIENTS / "demo-no-observations.json").read_text(encoding="utf-8"))
    order = {
        "resourceType": "ServiceRequest",
        "id": "mri-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/demo-no-observations"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
    }
    entries = [{"resource": entry["resource"]} for entry in record["entry"]]
    extras = [{"resource": resource} for resource in extra]
    return {"resourceType": "Bundle", "type": "collection", "entry": [*entries, {"resource": order}, *extras]}


def _whole_set(client: FlaskClient) -> dict[str, Any]:
    return client.get("/questionnaires/lbp-red-flags").get_json()  # type: ignore[no-any-return]


def _evaluate(client: FlaskClient, bundle: dict[str, Any]) -> Any:
    return client.post(f"/evaluate?asOf={AS_OF}", json=bundle)


def test_a_fever_yes_in_the_bundle_judges_the_order_with_it(admin_client: FlaskClient):
    without = _evaluate(admin_client, _bundle()).get_json()
    answers = response_to(_whole_set(admin_client), {"fever": "yes"})

    response = _evaluate(admin_client, _bundle(answers))

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert without["orders"][0]["appropriateness"] == "usually-not-appropriate"
    assert body["orders"][0]["appropriateness"] == "usually-appropriate"
    assert [variant["id"] for variant in body["variants"]] == ["V7"]
    (fever,) = body["redFlags"]
    assert fever["id"] == "fever"
    assert fever["evidence"][0]["detail"].startswith("clinician-reported")
    assert body["answers"]["answers"] == [{"redFlag": "fever", "answer": "yes"}]
    assert body["answers"]["verdictWithoutAnswers"]["variants"] == ["V1"]
    assert body["answers"]["changed"] is True
    record = admin_client.get(f"/assessments/{body['assessmentId']}", headers=ADMIN).get_json()
    assert record["answers"]["source"] == "evaluate"
    assert record["answers"]["changed"] is True
    assert "questions" not in record  # nothing was offered: the answers came with the Bundle


def test_a_no_never_removes_what_the_bundle_shows(admin_client: FlaskClient):
    bundle = _bundle()
    low_back_pain = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
    )
    cancer = {
        **low_back_pain,
        "id": "cancer",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.911"}]},
    }
    bundle["entry"].append({"resource": cancer})
    bundle["entry"].append({"resource": response_to(_whole_set(admin_client), {"cancer-history": "no"})})

    body = _evaluate(admin_client, bundle).get_json()

    assert "cancer-history" in [flag["id"] for flag in body["redFlags"]]
    assert body["answers"]["changed"] is False


@pytest.mark.parametrize(
    ("edit", "status", "words"),
    [
        pytest.param(
            lambda r: r.update(questionnaire="https://lbp-imaging-cds.org/fhir/Questionnaire/other"),
            422,
            "another Questionnaire",
            id="other-questionnaire",
        ),
        pytest.param(
            lambda r: r.update(subject={"reference": "Patient/another"}),
            422,
            "another patient",
            id="other-patient",
        ),
        pytest.param(
            lambda r: r["item"].append({"linkId": "headache", "answer": []}),
            400,
            "was not asked",
            id="unknown-link",
        ),
        pytest.param(
            lambda r: r["item"][0].update(answer=[{"valueString": "yes"}]),
            400,
            "valueCoding",
            id="string-answer",
        ),
    ],
)
def test_a_bad_response_in_the_bundle_is_refused_and_nothing_is_stored(
    admin_client: FlaskClient, edit, status, words
):
    answers = response_to(_whole_set(admin_client), {"fever": "yes"})
    edit(answers)

    response = _evaluate(admin_client, _bundle(answers))

    assert response.status_code == status
    body = response.get_json()
    assert words in body["message"]
    assert body["location"].startswith("entry[")
    summary = admin_client.get("/reports/summary?from=2000-01-01", headers=ADMIN).get_json()
    assert summary["assessments"] == 0


def test_two_responses_in_one_bundle_are_refused(admin_client: FlaskClient):
    answers = response_to(_whole_set(admin_client), {"fever": "yes"})

    response = _evaluate(admin_client, _bundle(answers, dict(answers)))

    assert response.status_code == 400
    assert "at most one QuestionnaireResponse" in response.get_json()["message"]
