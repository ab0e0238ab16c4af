"""Boundary pairs for every question: answered yes, answered no, skipped. A record that can show nothing
(conditions partly sent, no vitals, medications, procedures or birth date) leaves every red flag
unchecked, so each question is asked; what each answer does is read from the stored verdict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhir_mappings.criteria import RED_FLAGS
from service.questions import QuestionCatalog
from service.rules import load_rules
from tests.questions.conftest import questionnaire_of, questions_link, response_to, sign_order, stored

CATALOG = QuestionCatalog.from_rules(load_rules())
NOTHING_SHOWN: dict[str, Any] = {
    "drop": ("observations", "medicationRequests", "medicationStatements", "procedures"),
    "conditions_partial": True,
    "without_birth_date": True,
}


def _answered(demo: FlaskClient, flag: str, answer: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    found = questions_link(sign_order(demo, "demo-no-observations", **NOTHING_SHOWN))
    assert found is not None
    _, assessment_id, token = found
    questionnaire = questionnaire_of(demo, assessment_id, token)
    assert {item["linkId"] for item in questionnaire["item"]} == set(RED_FLAGS)
    resource = response_to(questionnaire, {flag: answer} if answer else {})
    response = demo.post(
        f"/questions/{assessment_id}?token={token}",
        data=json.dumps(resource),
        content_type="application/fhir+json",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), stored(demo, assessment_id)["answers"]


@pytest.mark.parametrize("flag", list(RED_FLAGS))
def test_yes_adds_the_red_flag_as_clinician_reported_evidence(demo: FlaskClient, flag: str):
    body, record = _answered(demo, flag, "yes")

    after = record["verdictAfter"]
    assert flag in after["redFlags"]
    assert flag not in after["uncheckedRedFlags"]
    (shown,) = [item for item in body["redFlags"] if item["redFlag"] == flag]
    assert shown["source"] == "clinician-reported"
    question = CATALOG.questions[flag]
    if question.urgent:
        assert all(order["urgent"] for order in after["orders"])
    elif question.why.startswith("Yes points to"):
        assert set(question.variants) & set(after["variants"])


@pytest.mark.parametrize("flag", list(RED_FLAGS))
def test_no_settles_the_red_flag_without_adding_it(demo: FlaskClient, flag: str):
    _, record = _answered(demo, flag, "no")

    after = record["verdictAfter"]
    assert flag not in after["redFlags"]
    assert flag not in after["uncheckedRedFlags"]
    assert flag in record["verdictBefore"]["uncheckedRedFlags"]


@pytest.mark.parametrize("flag", list(RED_FLAGS))
def test_a_skipped_question_leaves_the_red_flag_unchecked(demo: FlaskClient, flag: str):
    body, record = _answered(demo, flag, None)

    assert flag in record["verdictAfter"]["uncheckedRedFlags"]
    assert record["changed"] is False
    assert flag in {item["redFlag"] for item in body["stillUnchecked"]}
