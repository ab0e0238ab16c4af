"""The questions room under the Flask test client: a real hook call whose record leaves red flags
unchecked, the card's link, and the page and its JSON twin answered as a clinician or a client would."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from service.questions.questionnaire import LOINC
from tests.demo.conftest import draft_order, json_of, prefetch_for, services

ADMIN_TOKEN = "questions-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ANSWER_CODES = {"yes": "LA33-6", "no": "LA32-8", "unknown": "LA4489-6"}
QUESTIONS_LINK = re.compile(r"^http://localhost/questions/(?P<id>[^/?]+)\?token=(?P<token>[^&]+)$")


@pytest.fixture
def demo(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client(demo=True, admin_token=ADMIN_TOKEN, questions_key="k" * 32)


def with_next_page(bundle: dict[str, Any]) -> dict[str, Any]:
    """A searchset that says it has more pages, which the EHR did not send: only partly known."""
    return {**bundle, "link": [{"relation": "next", "url": "https://ehr.example/fhir/Condition?page=2"}]}


def sign_order(
    client: FlaskClient,
    patient_id: str,
    procedure: str = "mri-lumbar-without-contrast",
    *,
    drop: tuple[str, ...] = (),
    conditions_partial: bool = False,
    without_birth_date: bool = False,
    fhir_server: str | None = None,
) -> dict[str, Any]:
    """order-sign for a sample patient, the prefetch read from the demo EHR less the keys in `drop`."""
    service = services(client)["order-sign"]
    prefetch = prefetch_for(client, service, patient_id)
    for key in drop:
        prefetch.pop(key, None)
    if conditions_partial:
        prefetch["conditions"] = with_next_page(prefetch["conditions"])
    if without_birth_date:
        prefetch["patient"] = {k: v for k, v in prefetch["patient"].items() if k != "birthDate"}
    order = draft_order(client, patient_id, procedure)
    body = {
        "hook": "order-sign",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/demo-clinician",
            "patientId": patient_id,
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
        },
        "prefetch": prefetch,
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
    response = client.post(f"/cds-services/{service['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = json_of(response)
    return answer


def questions_link(answer: dict[str, Any]) -> tuple[str, str, str] | None:
    """(url, assessment id, token) of the card's questions link, or None when the card has none."""
    (card,) = answer["cards"]
    found = [link for link in card["links"] if "/questions/" in link["url"]]
    if not found:
        return None
    (link,) = found
    assert link["type"] == "absolute"
    match = QUESTIONS_LINK.match(link["url"])
    assert match, link["url"]
    assert parse_qs(urlsplit(link["url"]).query).keys() == {"token"}  # nothing else in the URL
    return link["url"], match["id"], match["token"]


def questionnaire_of(client: FlaskClient, assessment_id: str, token: str) -> dict[str, Any]:
    response = client.get(f"/questions/{assessment_id}/questionnaire?token={token}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    return response.get_json()  # type: ignore[no-any-return]


def response_to(questionnaire: dict[str, Any], answers: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A QuestionnaireResponse answering `answers` (linkId -> yes / no / unknown)."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "completed",
        "authored": "2026-11-26T12:01:00+00:00",
        "item": [
            {"linkId": link_id, "answer": [{"valueCoding": {"system": LOINC, "code": ANSWER_CODES[value]}}]}
            for link_id, value in answers.items()
        ],
        **fields,
    }


def stored(client: FlaskClient, assessment_id: str) -> dict[str, Any]:
    response = client.get(f"/assessments/{assessment_id}", headers=ADMIN)
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]
