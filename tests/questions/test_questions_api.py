"""Ask only for what is missing, over HTTP: the card's link, the questions it opens, the answers re-judged,
and every way in refused with a 4xx that names what is wrong, storing nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask.testing import FlaskClient

from fhir_mappings.criteria import RED_FLAGS
from tests.questions.conftest import (
    questionnaire_of,
    questions_link,
    response_to,
    sign_order,
    stored,
)

NO_VITALS = "demo-no-observations"


def _answer(client: FlaskClient, assessment_id: str, token: str, resource: dict[str, Any]) -> Any:
    return client.post(
        f"/questions/{assessment_id}?token={token}",
        data=json.dumps(resource),
        content_type="application/fhir+json",
    )


@pytest.mark.parametrize(
    ("withheld", "expected"),
    [
        pytest.param({"drop": ("observations",)}, {"fever", "unexplained-weight-loss"}, id="no-observations"),
        pytest.param(
            {"drop": ("procedures",)},
            {"prior-lumbar-surgery"},
            id="no-procedures",
        ),
        pytest.param({"without_birth_date": True}, {"age-over-50", "age-over-70"}, id="no-birth-date"),
    ],
)
def test_every_unchecked_red_flag_yields_its_question(demo: FlaskClient, withheld, expected):
    answer = sign_order(demo, "demo-acute", **withheld)
    found = questions_link(answer)
    assert found is not None
    _, assessment_id, token = found
    unchecked = stored(demo, assessment_id)["uncheckedRedFlags"]
    assert expected <= set(unchecked)

    questionnaire = questionnaire_of(demo, assessment_id, token)

    Questionnaire.model_validate(questionnaire)  # valid FHIR R4 (R4B models)
    assert sorted(item["linkId"] for item in questionnaire["item"]) == sorted(unchecked)
    for item in questionnaire["item"]:
        assert item["text"] == RED_FLAGS[item["linkId"]].question
        assert item["code"][0]["code"] == item["linkId"]
        assert item["item"][0]["text"].startswith("Yes ")  # why it matters, from the rules
    assert questionnaire["version"].startswith(stored(demo, assessment_id)["rulesVersion"])
    assert questionnaire["url"].endswith(assessment_id)
    assert any("Hutchins" in ext["valueString"] for ext in questionnaire["extension"])


def test_a_record_that_answers_everything_gets_no_link(demo: FlaskClient):
    answer = sign_order(demo, "demo-acute")
    assert questions_link(answer) is None
    (card,) = answer["cards"]
    assert stored(demo, card["extension"]["lbp-imaging-cds"]["assessmentId"]).get("questions") is None


def test_the_demo_patient_without_vitals_gets_the_link_and_fever_yes_makes_mri_appropriate(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    (card,) = answer["cards"]
    assert card["extension"]["lbp-imaging-cds"]["appropriateness"] == "usually-not-appropriate"
    _url, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)

    response = _answer(demo, assessment_id, token, response_to(questionnaire, {"fever": "yes"}))

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["changed"] is True
    (before,), (after,) = body["before"], body["after"]
    assert before["appropriateness"] == "usually-not-appropriate"
    assert "pamaRating" not in before
    assert after["appropriateness"] == "usually-appropriate"
    assert after["pamaRating"] == "appropriate"
    assert any(line.startswith("V7") and "fever" in line for line in body["why"])
    (fever,) = [flag for flag in body["redFlags"] if flag["redFlag"] == "fever"]
    assert fever["source"] == "clinician-reported"
    assert "2026-11-26T12:01:00+00:00" in fever["evidence"]
    assert "Fever (38.0" in fever["evidence"]
    record = stored(demo, assessment_id)["answers"]
    assert record["source"] == "questions-page"
    assert record["answers"] == [{"redFlag": "fever", "answer": "yes"}]
    assert record["verdictBefore"]["variants"] == ["V1"]
    assert record["verdictAfter"]["variants"] == ["V7"]
    assert record["changed"] is True


def test_an_urgent_yes_turns_not_appropriate_into_urgent_mri(demo: FlaskClient):
    answer = sign_order(demo, "demo-acute", "xr-lumbar", conditions_partial=True)
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    assert questionnaire["item"][0]["linkId"] == "cauda-equina"  # urgent questions first

    body = _answer(demo, assessment_id, token, response_to(questionnaire, {"cauda-equina": "yes"})).get_json()

    (before,), (after,) = body["before"], body["after"]
    assert before["indicator"] == "warning"
    assert after["indicator"] == "critical"
    assert "MRI" in after["summary"]
    assert body["why"][0] == "Urgent imaging: suspected cauda equina syndrome"
    assert stored(demo, assessment_id)["answers"]["verdictAfter"]["orders"][0]["urgent"] is True


def test_denying_every_flag_keeps_the_verdict_and_removes_the_could_not_check_lines(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    denied = {item["linkId"]: "no" for item in questionnaire["item"]}

    body = _answer(demo, assessment_id, token, response_to(questionnaire, denied)).get_json()

    (before,), (after,) = body["before"], body["after"]
    assert before["appropriateness"] == after["appropriateness"] == "usually-not-appropriate"
    assert body["changed"] is False
    assert "could not be checked" in before["detail"]
    assert "could not be checked" not in after["detail"]
    assert after["pamaRating"] == "not-appropriate"  # the withheld rating is now given
    assert body["stillUnchecked"] == []


def test_an_answer_never_overrides_what_the_record_shows(demo: FlaskClient):
    answer = sign_order(demo, "demo-cancer-history", drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    asked = {item["linkId"] for item in questionnaire["item"]}
    assert "cancer-history" not in asked  # the record answers it: never asked

    forced = response_to(questionnaire, {"cancer-history": "no"})
    refused = _answer(demo, assessment_id, token, forced)

    assert refused.status_code == 400
    assert "cancer-history" in refused.get_json()["message"]


def test_the_page_is_a_plain_accessible_form_with_only_those_questions(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    url, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")

    page = demo.get(url.removeprefix("http://localhost"))

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert html.count("<fieldset") == 2
    assert html.count("<legend>") == 2
    assert "Fever (38.0 °C or higher) in the last 7 days?" in html
    assert "<script" not in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]

    answered = demo.post(f"/questions/{assessment_id}", data={"token": token, "fever": "yes"})

    assert answered.status_code == 200
    assert answered.mimetype == "text/html"
    text = answered.get_data(as_text=True)
    assert "The answers changed the verdict" in text
    assert "usually appropriate" in text


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        pytest.param(lambda token: None, 403, "questions-token-missing", id="missing"),
        pytest.param(
            lambda token: token[:-3] + ("aaa" if token[-3:] != "aaa" else "bbb"),
            403,
            "questions-token-invalid",
            id="tampered",
        ),
        pytest.param(lambda token: token + "x", 403, "questions-token-invalid", id="tampered-length"),
    ],
)
def test_a_bad_token_is_refused_and_nothing_is_stored(demo: FlaskClient, change, status, code):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    bad = change(token)
    query = f"?token={bad}" if bad else ""

    refused = demo.post(
        f"/questions/{assessment_id}{query}",
        json=response_to(questionnaire, {"fever": "yes"}),
    )

    assert refused.status_code == status
    assert refused.get_json()["error"] == code
    assert "answers" not in stored(demo, assessment_id)
    assert demo.get(f"/questions/{assessment_id}{query}").status_code == status  # the page too


def test_a_token_for_another_assessment_is_refused(demo: FlaskClient):
    first = questions_link(sign_order(demo, NO_VITALS, drop=("observations",)))
    second = questions_link(sign_order(demo, NO_VITALS, drop=("observations",)))
    assert first
    assert second
    questionnaire = questionnaire_of(demo, first[1], first[2])

    refused = _answer(demo, first[1], second[2], response_to(questionnaire, {"fever": "yes"}))

    assert refused.status_code == 403
    assert refused.get_json()["error"] == "questions-token-other-assessment"
    assert "answers" not in stored(demo, first[1])


def test_an_expired_link_is_refused(demo: FlaskClient, clock):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    clock.now += timedelta(minutes=30)

    refused = _answer(demo, assessment_id, token, response_to(questionnaire, {"fever": "yes"}))

    assert refused.status_code == 403
    assert refused.get_json()["error"] == "questions-link-expired"
    page = demo.get(f"/questions/{assessment_id}?token={token}")
    assert page.status_code == 403
    assert "expired" in page.get_data(as_text=True)
    assert "answers" not in stored(demo, assessment_id)


def test_a_link_answers_once(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    first = _answer(demo, assessment_id, token, response_to(questionnaire, {"fever": "no"}))
    assert first.status_code == 200

    again = _answer(demo, assessment_id, token, response_to(questionnaire, {"fever": "yes"}))

    assert again.status_code == 409
    assert again.get_json()["error"] == "questions-already-answered"
    assert stored(demo, assessment_id)["answers"]["answers"] == [{"redFlag": "fever", "answer": "no"}]


@pytest.mark.parametrize(
    ("edit", "status", "words"),
    [
        pytest.param(
            lambda r: r["item"].append({"linkId": "cauda-equina", "answer": []}),
            400,
            "'cauda-equina' was not asked",
            id="not-asked",
        ),
        pytest.param(
            lambda r: r.update(questionnaire="https://other.example/Questionnaire/phq-9"),
            422,
            "another Questionnaire",
            id="other-questionnaire",
        ),
        pytest.param(
            lambda r: r["item"][0].update(answer=[{"valueBoolean": True}]),
            400,
            "must be a valueCoding",
            id="boolean-answer",
        ),
        pytest.param(
            lambda r: r["item"][0].update(
                answer=[{"valueCoding": {"system": "http://loinc.org", "code": "LA6576-8"}}]
            ),
            400,
            "must be one of Yes",
            id="unknown-code",
        ),
        pytest.param(
            lambda r: r.update(subject={"reference": "Patient/someone-else"}),
            422,
            "another patient",
            id="other-patient",
        ),
        pytest.param(lambda r: r.update(status="in-progress"), 400, "status", id="in-progress"),
        pytest.param(
            lambda r: r.update(resourceType="Observation"), 400, "QuestionnaireResponse", id="not-a-response"
        ),
        pytest.param(lambda r: r["item"].append(dict(r["item"][0])), 400, "answered twice", id="twice"),
        pytest.param(lambda r: r.update(authored="yesterday"), 400, "authored", id="bad-authored"),
    ],
)
def test_a_bad_response_is_a_4xx_naming_what_is_wrong_and_stores_nothing(
    demo: FlaskClient, edit, status, words
):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    resource = response_to(questionnaire, {"fever": "yes"})
    edit(resource)

    refused = _answer(demo, assessment_id, token, resource)

    assert refused.status_code == status, refused.get_data(as_text=True)
    assert words in refused.get_json()["message"]
    assert "answers" not in stored(demo, assessment_id)
    retried = _answer(demo, assessment_id, token, response_to(questionnaire, {"fever": "yes"}))
    assert retried.status_code == 200  # the refusal used nothing up


def test_a_valid_response_is_valid_fhir_and_the_subject_may_be_the_patient(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")
    questionnaire = questionnaire_of(demo, assessment_id, token)
    resource = response_to(questionnaire, {"fever": "unknown"}, subject={"reference": f"Patient/{NO_VITALS}"})
    QuestionnaireResponse.model_validate(resource)

    response = demo.post(
        f"/questions/{assessment_id}", json=resource, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.get_json()["changed"] is False
    assert {"redFlag": "fever", "title": "fever"} in response.get_json()["stillUnchecked"]


def test_a_bad_form_answer_is_an_html_400(demo: FlaskClient):
    answer = sign_order(demo, NO_VITALS, drop=("observations",))
    _, assessment_id, token = questions_link(answer) or pytest.fail("no questions link")

    refused = demo.post(f"/questions/{assessment_id}", data={"token": token, "fever": "maybe"})

    assert refused.status_code == 400
    assert refused.mimetype == "text/html"
    assert "yes, no or unknown" in refused.get_data(as_text=True)
    assert "answers" not in stored(demo, assessment_id)


def test_unknown_assessments_are_404_once_the_token_is_valid_for_them(demo: FlaskClient):
    answer = sign_order(demo, "demo-acute")  # no questions offered
    (card,) = answer["cards"]
    assessment_id = card["extension"]["lbp-imaging-cds"]["assessmentId"]
    runtime = demo.application.extensions["lbp-imaging-cds"]
    token, _ = runtime.question_signer.issue(assessment_id, now=runtime.clock())

    response = demo.get(f"/questions/{assessment_id}/questionnaire?token={token}")

    assert response.status_code == 404
    assert response.get_json()["error"] == "no-questions"


def test_the_whole_set_is_a_valid_questionnaire_with_every_red_flag(client: FlaskClient):
    response = client.get("/questionnaires/lbp-red-flags")

    assert response.status_code == 200
    questionnaire = response.get_json()
    Questionnaire.model_validate(questionnaire)
    assert {item["linkId"] for item in questionnaire["item"]} == set(RED_FLAGS)
    assert questionnaire["url"] == "https://lbp-imaging-cds.org/fhir/Questionnaire/lbp-red-flags"
