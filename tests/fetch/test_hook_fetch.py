"""The hook route fetching from a real FHIR server: same answer as prefetch, on time, 412 when it must."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import EXAMPLES
from tests.support.fhir_server import FhirTestServer
from tests.support.jwt_tokens import SigningKey, TokenMinter, client_entry, new_es384_key, write_clients_file

SIGN = "/cds-services/lbp-imaging-order-sign"
TOKEN = "hook-test-token-5b2e8c"


def _example() -> dict[str, Any]:
    request: dict[str, Any] = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    return request


def _resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource the example prefetches, so the FHIR server holds the same record."""
    found: list[dict[str, Any]] = []
    for value in prefetch.values():
        if value and value["resourceType"] == "Bundle":
            found.extend(entry["resource"] for entry in value.get("entry", []))
        elif value:
            found.append(value)
    return found


@pytest.fixture
def ehr() -> Iterator[FhirTestServer]:
    with FhirTestServer(_resources(_example()["prefetch"])) as server:
        yield server


@pytest.fixture
def signing_keys() -> dict[str, SigningKey]:
    return {"ehr-a": new_es384_key(), "ehr-b": new_es384_key()}


@pytest.fixture
def settings_overrides(
    settings_overrides: dict[str, Any],
    tmp_path: Path,
    ehr: FhirTestServer,
    signing_keys: dict[str, SigningKey],
) -> dict[str, Any]:
    """Client A may send the service to `ehr`; client B only to a server of its own."""
    clients_file = write_clients_file(
        tmp_path / "clients.yaml",
        [
            client_entry("https://ehr-a.test", keys=[signing_keys["ehr-a"]], fhir_servers=[ehr.base_url]),
            client_entry(
                "https://ehr-b.test", keys=[signing_keys["ehr-b"]], fhir_servers=["https://b.test/fhir"]
            ),
        ],
    )
    return {**settings_overrides, "clients_file": str(clients_file), "fetch_deadline_seconds": 1.0}


def _fetching(request: dict[str, Any], server: str, *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request with its prefetch left out (but for `keep`), and access to `server` granted instead."""
    request["prefetch"] = {key: value for key, value in request["prefetch"].items() if key in keep}
    request["fhirServer"] = server
    request["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "lbp-imaging-cds",
    }
    return request


def _body(response: TestResponse) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def _card_facts(response: TestResponse) -> dict[str, Any]:
    extension = _body(response)["cards"][0]["extension"]["lbp-imaging-cds"]
    return {name: extension.get(name) for name in ("order", "procedure", "redFlags", "appropriateness")}


def test_nothing_prefetched_gets_the_same_answer_as_everything_prefetched(client: FlaskClient, ehr):
    prefetched = client.post(SIGN, json=_example())
    fetched = client.post(SIGN, json=_fetching(_example(), ehr.base_url))

    assert prefetched.status_code == fetched.status_code == 200
    assert _card_facts(fetched) == _card_facts(prefetched)
    assert len(ehr.received) == len(_example()["prefetch"])
    assert {r.headers["authorization"] for r in ehr.received} == {f"Bearer {TOKEN}"}


def test_nothing_prefetched_from_a_server_taking_100_ms_a_query_is_answered_well_under_500_ms(
    client: FlaskClient, ehr
):
    ehr.knobs.delay_seconds = dict.fromkeys(
        [
            "Patient",
            "Condition",
            "Observation",
            "MedicationRequest",
            "MedicationStatement",
            "Procedure",
            "ServiceRequest",
        ],
        0.1,
    )
    client.post(SIGN, json=_example())  # warm-up: first-call costs are not what this measures

    started = time.perf_counter()
    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert len(ehr.received) == 7
    assert elapsed < 0.35, f"took {elapsed:.3f} s"


def test_an_untrusted_fhir_server_is_never_called_and_the_answer_is_412(client: FlaskClient, ehr):
    with FhirTestServer(_resources(_example()["prefetch"])) as stranger:
        response = client.post(SIGN, json=_fetching(_example(), stranger.base_url))

        assert stranger.received == []
    assert response.status_code == 412
    message = _body(response)["message"]
    assert "patient and conditions" in message
    assert "not trusted for this client" in message
    assert "nothing was fetched" in message
    assert "unusable answer" not in message  # the server was never asked
    assert "add that FHIR server to this client's fhir_servers" in message


def test_a_401_for_the_patient_is_412_without_the_servers_words(client: FlaskClient, ehr):
    ehr.knobs.status = {"Patient": 401}

    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url))

    assert response.status_code == 412
    assert "patient" in _body(response)["message"]
    assert "SECRET-SERVER-DETAIL" not in response.get_data(as_text=True)


def test_observations_past_the_deadline_are_a_stated_gap_and_the_answer_comes_on_time(
    client: FlaskClient, ehr
):
    ehr.knobs.delay_seconds = {"Observation": 5.0}

    started = time.perf_counter()
    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url, keep=("patient", "conditions")))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0 + 0.3
    detail = _body(response)["cards"][0]["detail"].lower()
    assert "observations" in detail
    assert "did not answer in time" in detail


def test_with_auth_on_only_the_calling_clients_own_fhir_servers_are_trusted(
    make_client, ehr, signing_keys, clock
):
    client = make_client(auth="required")
    request = _fetching(_example(), ehr.base_url)

    def call_as(name: str) -> TestResponse:
        minter = TokenMinter(
            signing_keys[name], iss=f"https://{name}.test", base_url="http://localhost", clock=clock
        )
        response: TestResponse = client.post(SIGN, json=request, headers=minter.headers(SIGN))
        return response

    refused = call_as("ehr-b")  # ehr is on client A's allowlist, not B's
    assert refused.status_code == 412
    assert ehr.received == []

    accepted = call_as("ehr-a")
    assert accepted.status_code == 200
    assert len(ehr.received) == 7


# A slow or failing FHIR server costs the part of the record it holds, never the whole answer: past the
# deadline or on an error, what is missing is named on the card with why, what could not be checked stays
# unchecked (never "no red flag"), and no PAMA rating is recorded when the missing part could change it.


def _partial_card(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = _body(response)
    assert "systemActions" not in body or body["systemActions"] == []  # no rating on a provisional verdict
    card: dict[str, Any] = body["cards"][0]
    card["detail"] = card["detail"].replace("\\", "")  # markdown escapes out of the way
    assert card["indicator"] == "warning"
    assert "an urgent red flag could not be checked" in card["summary"]
    assert "**Suspected cauda equina syndrome could not be checked**" in card["detail"]
    assert "No Conditions" in card["detail"]
    return card


def test_conditions_past_the_deadline_get_a_labelled_partial_verdict_on_time(client: FlaskClient, ehr):
    ehr.knobs.delay_seconds = {"Condition": 5.0}

    started = time.perf_counter()
    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url))
    elapsed = time.perf_counter() - started

    card = _partial_card(response)
    assert (
        "Conditions (problems and diagnoses): the EHR's FHIR server did not answer in time" in card["detail"]
    )
    assert "provisional" in card["detail"]
    assert elapsed < 1.0 + 0.3
    assert "V7 (suspected cancer or infection, or immunosuppression) could apply" in card["detail"]


def test_conditions_answered_with_a_server_error_get_a_labelled_partial_verdict(client: FlaskClient, ehr):
    ehr.knobs.status = {"Condition": 500}

    card = _partial_card(client.post(SIGN, json=_fetching(_example(), ehr.base_url)))

    assert "the EHR's FHIR server answered with an error (HTTP 500)" in card["detail"]
    assert "SECRET-SERVER-DETAIL" not in card["detail"]


def test_conditions_answered_with_garbage_get_a_labelled_partial_verdict(client: FlaskClient, ehr):
    ehr.knobs.raw_body = {"Condition": b"<html>gateway says hello</html>"}

    card = _partial_card(client.post(SIGN, json=_fetching(_example(), ehr.base_url)))

    assert "the EHR's FHIR server gave an unusable answer" in card["detail"]
    assert "gateway says hello" not in card["detail"]


def test_a_red_flag_in_what_was_read_is_shown_and_acted_on_when_conditions_fail(client: FlaskClient, ehr):
    ehr.knobs.status = {"Condition": 503}
    ehr.add(
        {
            "resourceType": "Observation",
            "id": "temp-fever",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "subject": {"reference": "Patient/example-lbp-1"},
            "effectiveDateTime": "2026-11-25T08:00:00Z",
            "valueQuantity": {
                "value": 39.1,
                "unit": "Cel",
                "system": "http://unitsofmeasure.org",
                "code": "Cel",
            },
        }
    )

    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url))

    assert response.status_code == 200
    card = _body(response)["cards"][0]
    facts = card["extension"]["lbp-imaging-cds"]
    assert "fever" in facts["redFlags"]
    assert facts["variants"] == ["V7"]
    assert facts["appropriateness"] == "usually-appropriate"
    assert "Observation/temp-fever, LOINC 8310-5, 2026-11-25T08:00:00Z, 39.1 °C" in card["detail"]
    assert "HTTP 503" in card["detail"].replace("\\", "")
    assert "**Suspected cauda equina syndrome could not be checked**" in card["detail"]
    # What the missing conditions could add would not lower "usually appropriate": rated as usual.
    assert _body(response)["systemActions"]


def test_the_patient_failing_at_the_server_is_still_412(client: FlaskClient, ehr):
    ehr.knobs.status = {"Patient": 500}
    ehr.knobs.delay_seconds = {"Condition": 5.0}

    response = client.post(SIGN, json=_fetching(_example(), ehr.base_url))

    assert response.status_code == 412
    assert "without the patient's patient" in _body(response)["message"]


def test_conditions_neither_sent_nor_fetchable_are_still_412(client: FlaskClient, ehr):
    request = _example()
    del request["prefetch"]["conditions"]  # no fhirServer either: nothing could be fetched

    response = client.post(SIGN, json=request)

    assert response.status_code == 412
    assert "conditions" in _body(response)["message"]
