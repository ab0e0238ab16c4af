"""What is taken from prefetch, what is fetched, and how fast: against a real FHIR server on loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest

from service.config import load_settings
from service.fetch import PrefetchGatherer
from tests.fetch.conftest import ACCESS_TOKEN, PATIENT_ID, TEMPLATES, TYPE_OF_KEY, gather, ids, record

OPERATION_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "prefetch timed out"}],
}


def _bundle(*resource_ids: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Condition", "id": rid}} for rid in resource_ids],
    }


def _all_prefetched() -> dict[str, Any]:
    return {key: _bundle(f"{key}-1") for key in TEMPLATES} | {
        "patient": {"resourceType": "Patient", "id": PATIENT_ID}
    }


def test_everything_prefetched_sends_no_request_and_keeps_the_values_as_sent(gatherer, fhir_server):
    prefetch = _all_prefetched()

    result = gather(gatherer, fhir_server, prefetch)

    assert fhir_server.received == []
    assert result.values == prefetch
    assert result.missing == {}
    assert result.fetched == ()


def test_nothing_prefetched_fetches_every_key_in_parallel(gatherer, fhir_server):
    fhir_server.knobs.delay_seconds = dict.fromkeys(TYPE_OF_KEY.values(), 0.1)

    started = time.perf_counter()
    result = gather(gatherer, fhir_server)
    elapsed = time.perf_counter() - started

    assert result.missing == {}
    assert set(result.fetched) == set(TEMPLATES)
    assert len(fhir_server.received) == len(TEMPLATES)
    # Seven queries of 100 ms each: serial would take 700 ms; in parallel, about the slowest one.
    assert elapsed < 0.4, f"took {elapsed:.3f} s"
    assert result.elapsed_ms < 400
    assert all(timing >= 100 for timing in result.timings_ms.values()), result.timings_ms


def test_fetched_values_are_the_patients_own_resources_with_the_templates_filters(gatherer, fhir_server):
    result = gather(gatherer, fhir_server)

    assert result.values["patient"] == next(r for r in record() if r["id"] == PATIENT_ID)
    conditions = result.values["conditions"]
    assert conditions["resourceType"] == "Bundle"
    assert conditions["type"] == "searchset"
    assert ids(conditions) == ["cond-1", "cond-2", "cond-3", "cond-4", "cond-5"]  # not the other patient's
    assert ids(result.values["observations"]) == ["temp-1", "weight-1"]  # only the two LOINC codes asked for
    assert ids(result.values["medicationRequests"]) == ["medreq-1"]


def test_every_request_carries_the_bearer_token_and_asks_for_fhir_json(gatherer, fhir_server):
    gather(gatherer, fhir_server)

    assert fhir_server.received
    for received in fhir_server.received:
        assert received.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert received.headers["accept"] == "application/fhir+json"
        assert "cookie" not in received.headers
    patient_reads = fhir_server.requests_for("Patient")
    assert [r.path for r in patient_reads] == [f"/fhir/Patient/{PATIENT_ID}"]
    observation_query = fhir_server.requests_for("Observation")[0].query
    assert observation_query == {
        "patient": [PATIENT_ID],
        "code": ["http://loinc.org|8310-5,http://loinc.org|29463-7"],
    }


def test_partly_prefetched_fetches_only_the_keys_left_out(gatherer, fhir_server):
    prefetch = {"patient": {"resourceType": "Patient", "id": PATIENT_ID}, "conditions": _bundle("c-from-ehr")}

    result = gather(gatherer, fhir_server, prefetch)

    assert result.values["patient"] is prefetch["patient"]
    assert ids(result.values["conditions"]) == ["c-from-ehr"]
    assert set(result.fetched) == set(TEMPLATES) - {"patient", "conditions"}
    assert fhir_server.requests_for("Patient") == []
    assert fhir_server.requests_for("Condition") == []
    assert len(fhir_server.received) == len(TEMPLATES) - 2


def test_a_null_key_means_no_data_and_is_not_queried_again(gatherer, fhir_server):
    result = gather(gatherer, fhir_server, {"procedures": None, "medicationStatements": None})

    assert result.values["procedures"] is None
    assert result.values["medicationStatements"] is None
    assert "procedures" not in result.missing
    assert "procedures" not in result.fetched
    assert fhir_server.requests_for("Procedure") == []
    assert fhir_server.requests_for("MedicationStatement") == []


def test_an_operation_outcome_value_is_a_failed_prefetch_queried_once_more(gatherer, fhir_server):
    result = gather(gatherer, fhir_server, {"conditions": OPERATION_OUTCOME})

    assert len(fhir_server.requests_for("Condition")) == 1
    assert "conditions" in result.fetched
    assert ids(result.values["conditions"])[0] == "cond-1"


def test_an_operation_outcome_value_without_fhir_access_is_missing_not_empty(gatherer):
    result = gather(gatherer, None, {**_all_prefetched(), "conditions": OPERATION_OUTCOME})

    assert "conditions" not in result.values
    assert result.missing == {"conditions": "prefetch-failed-and-no-fhirServer"}


def test_a_prefetch_value_that_is_not_a_resource_is_treated_as_failed(gatherer, fhir_server):
    result = gather(gatherer, fhir_server, {"procedures": ["not", "a", "resource"]})

    assert ids(result.values["procedures"]) == ["proc-1"]
    assert len(fhir_server.requests_for("Procedure")) == 1


@pytest.mark.parametrize(
    ("fhir_server_given", "authorization_given", "reason"),
    [
        (False, False, "not-prefetched-and-no-fhirServer"),
        (False, True, "not-prefetched-and-no-fhirServer"),
        (True, False, "not-prefetched-and-no-fhirAuthorization"),
    ],
)
def test_without_both_fhir_server_and_authorization_nothing_is_fetched(
    gatherer, fhir_server, fhir_server_given, authorization_given, reason
):
    overrides: dict[str, Any] = {}
    if not fhir_server_given:
        overrides["fhir_server"] = None
    if not authorization_given:
        overrides["fhir_authorization"] = None

    result = gather(gatherer, fhir_server, {"patient": {"resourceType": "Patient", "id": "p"}}, **overrides)

    assert fhir_server.received == []
    assert result.missing == {key: reason for key in TEMPLATES if key != "patient"}
    assert set(result.values) == {"patient"}


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ({"token_type": "Bearer"}, "no-access-token"),
        ({"access_token": "", "token_type": "Bearer"}, "no-access-token"),
        ({"access_token": 12345}, "no-access-token"),
        ({"access_token": "abc\r\nX-Injected: 1"}, "malformed-access-token"),
        ({"access_token": "abc", "token_type": "MAC"}, "unsupported-token-type"),
    ],
)
def test_an_unusable_fhir_authorization_fetches_nothing(gatherer, fhir_server, authorization, reason):
    result = gather(gatherer, fhir_server, fhir_authorization=authorization)

    assert fhir_server.received == []
    assert set(result.missing.values()) == {f"not-prefetched-and-{reason}"}


def test_a_template_that_cannot_be_filled_is_missing_and_not_sent(gatherer, fhir_server):
    result = gather(gatherer, fhir_server, context={"userId": "Practitioner/1"})  # no patientId

    assert fhir_server.received == []
    assert result.missing == dict.fromkeys(TEMPLATES, "template-not-fillable")


def test_searchset_pages_are_followed_and_merged_into_one_bundle(gatherer, fhir_server):
    fhir_server.knobs.page_size = 2

    result = gather(gatherer, fhir_server)

    conditions = result.values["conditions"]
    assert ids(conditions) == ["cond-1", "cond-2", "cond-3", "cond-4", "cond-5"]
    assert conditions["total"] == 5
    assert "link" not in conditions
    assert [r.query.get("_page") for r in fhir_server.requests_for("Condition")] == [None, ["2"], ["3"]]
    assert result.truncated == {}


def test_paging_stops_at_the_page_limit_and_says_so(fhir_server):
    fhir_server.knobs.page_size = 2
    with PrefetchGatherer(
        deadline_seconds=2,
        query_timeout_seconds=1.5,
        max_pages=2,
        max_response_bytes=10**6,
        max_resources=100,
    ) as gatherer:
        result = gather(gatherer, fhir_server)

    assert ids(result.values["conditions"]) == ["cond-1", "cond-2", "cond-3", "cond-4"]
    assert result.values["conditions"]["total"] == 5  # the server's count shows what was left unread
    assert result.truncated == {"conditions": "page-limit"}
    assert len(fhir_server.requests_for("Condition")) == 2


def test_paging_stops_at_the_resource_limit_and_says_so(fhir_server):
    fhir_server.knobs.page_size = 2
    with PrefetchGatherer(
        deadline_seconds=2, query_timeout_seconds=1.5, max_pages=5, max_response_bytes=10**6, max_resources=3
    ) as gatherer:
        result = gather(gatherer, fhir_server)

    assert ids(result.values["conditions"]) == ["cond-1", "cond-2", "cond-3"]
    assert result.truncated == {"conditions": "resource-limit"}


def test_connections_are_reused_across_queries_and_calls(gatherer, fhir_server):
    fhir_server.knobs.delay_seconds = dict.fromkeys(TYPE_OF_KEY.values(), 0.05)
    gather(gatherer, fhir_server)
    first_ports = {r.client_port for r in fhir_server.received}

    gather(gatherer, fhir_server)
    second_ports = {r.client_port for r in fhir_server.received[len(TEMPLATES) :]}

    assert len(fhir_server.received) == 2 * len(TEMPLATES)
    assert second_ports <= first_ports  # no new connection was opened for the second call


def test_a_closed_gatherer_refuses_to_gather(fhir_server):
    gatherer = PrefetchGatherer(
        deadline_seconds=1, query_timeout_seconds=1, max_pages=1, max_response_bytes=1000, max_resources=10
    )
    gatherer.close()

    with pytest.raises(RuntimeError, match="closed"):
        gather(gatherer, fhir_server)
    assert fhir_server.received == []


def test_from_settings_takes_the_fetch_limits(fhir_server):
    settings = load_settings(environ={"CDS_FETCH_DEADLINE_SECONDS": "0.3", "CDS_FETCH_MAX_PAGES": "1"})
    fhir_server.knobs.delay_seconds = {"Condition": 2.0}
    fhir_server.knobs.page_size = 1
    with PrefetchGatherer.from_settings(settings) as gatherer:
        started = time.perf_counter()
        result = gather(gatherer, fhir_server)
        elapsed = time.perf_counter() - started

    assert result.missing == {"conditions": "deadline"}
    assert elapsed < 0.3 + 0.25
    assert result.truncated == {"observations": "page-limit"}  # two observations, one page of one allowed
