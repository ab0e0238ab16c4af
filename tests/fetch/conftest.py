"""A running loopback FHIR server with one patient's record, and a gatherer with short test limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.fetch import GatherResult, PrefetchGatherer
from tests.support.fhir_server import FhirTestServer

PATIENT_ID = "pat-7f3a"
OTHER_PATIENT_ID = "pat-other"
ACCESS_TOKEN = "tok-9c1e5b7a2d4f6e8a0b3c5d7e9f1a2b4c"
# The prefetch templates both services declare in discovery (docs: shared layout).
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|8310-5,http://loinc.org|29463-7",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "therapyRequests": "ServiceRequest?patient={{context.patientId}}",
}
TYPE_OF_KEY = {key: template.split("?")[0].split("/")[0] for key, template in TEMPLATES.items()}
CONTEXT = {"patientId": PATIENT_ID, "userId": "Practitioner/prac-1", "draftOrders": {}}


def _of(patient: str, resource_type: str, resource_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "subject": {"reference": f"Patient/{patient}"},
        **fields,
    }


def _loinc(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://loinc.org", "code": code}]}


def record() -> list[dict[str, Any]]:
    """One patient with something of every kind, and another patient who must never show up."""
    return [
        {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1961-04-02", "gender": "female"},
        {"resourceType": "Patient", "id": OTHER_PATIENT_ID, "birthDate": "1990-01-01"},
        *(
            _of(
                PATIENT_ID,
                "Condition",
                f"cond-{n}",
                code={"coding": [{"system": "http://snomed.info/sct", "code": c}]},
            )
            for n, c in enumerate(["279039007", "363346000", "22253000", "68962001", "55822004"], start=1)
        ),
        _of(OTHER_PATIENT_ID, "Condition", "cond-other", code={"text": "someone else's"}),
        _of(PATIENT_ID, "Observation", "temp-1", code=_loinc("8310-5"), valueQuantity={"value": 38.4}),
        _of(PATIENT_ID, "Observation", "weight-1", code=_loinc("29463-7"), valueQuantity={"value": 76}),
        _of(PATIENT_ID, "Observation", "hba1c-1", code=_loinc("4548-4")),
        {
            "resourceType": "MedicationRequest",
            "id": "medreq-1",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
        },
        _of(PATIENT_ID, "MedicationStatement", "medstmt-1"),
        _of(PATIENT_ID, "Procedure", "proc-1"),
        _of(PATIENT_ID, "ServiceRequest", "sr-pt-1"),
    ]


@pytest.fixture
def fhir_server() -> Iterator[FhirTestServer]:
    with FhirTestServer(record()) as server:
        yield server


@pytest.fixture
def other_server() -> Iterator[FhirTestServer]:
    """Another origin: what the service must never call, nor hand the token to."""
    with FhirTestServer(record()) as server:
        yield server


@pytest.fixture
def limits() -> dict[str, Any]:
    """Gatherer limits; a test edits the dict before asking for `gatherer`."""
    return {
        "deadline_seconds": 2.0,
        "query_timeout_seconds": 1.5,
        "max_pages": 5,
        "max_response_bytes": 1024 * 1024,
        "max_resources": 5000,
    }


@pytest.fixture
def gatherer(limits: dict[str, Any]) -> Iterator[PrefetchGatherer]:
    with PrefetchGatherer(**limits) as built:
        yield built


def authorization(token: str = ACCESS_TOKEN) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }


def gather(
    gatherer: PrefetchGatherer,
    server: FhirTestServer | None,
    prefetch: dict[str, Any] | None = None,
    **overrides: Any,
) -> GatherResult:
    """`gatherer.gather` as a hook call with the test patient, the server trusted and a token granted."""
    arguments: dict[str, Any] = {
        "templates": TEMPLATES,
        "prefetch": prefetch or {},
        "context": CONTEXT,
        "fhir_server": server.base_url if server else None,
        "fhir_authorization": authorization() if server else None,
        "allowed_servers": [server.base_url] if server else [],
    }
    arguments.update(overrides)
    return gatherer.gather(**arguments)


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]
