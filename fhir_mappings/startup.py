"""Start-up work: validate the terminology, then map one synthetic record so the first request does not
pay for loading value sets, building code indexes and importing the R4B models (~0.5 s)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappings.criteria import check_criteria
from fhir_mappings.findings import findings
from fhir_mappings.inputs import build_record
from fhir_mappings.model import InputKind
from fhir_mappings.orders import imaging_orders
from fhir_mappings.terminology import CPT, ICD10CM, LOINC

_WARM_UP_DAY = date(2000, 1, 31)
_SUBJECT = {"reference": "Patient/warm-up"}


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _warm_up_parts() -> dict[InputKind, list[Any]]:
    """One synthetic resource of each type the mappings validate (no real data)."""
    return {
        InputKind.PATIENT: [{"resourceType": "Patient", "id": "warm-up", "birthDate": "1940"}],
        InputKind.CONDITIONS: [
            {
                "resourceType": "Condition",
                "id": "c",
                "subject": _SUBJECT,
                "code": _coded(ICD10CM, "M54.50"),
                "onsetDateTime": "2000-01-01",
            }
        ],
        InputKind.OBSERVATIONS: [
            {
                "resourceType": "Observation",
                "id": "o",
                "status": "final",
                "subject": _SUBJECT,
                "code": _coded(LOINC, "8310-5"),
                "effectiveDateTime": "2000-01-30",
                "valueQuantity": {"value": 38.5, "system": "http://unitsofmeasure.org", "code": "Cel"},
            }
        ],
        InputKind.MEDICATIONS: [
            {
                "resourceType": "MedicationStatement",
                "id": "m",
                "status": "active",
                "subject": _SUBJECT,
                "medicationCodeableConcept": {"text": "alendronate"},
                "effectiveDateTime": "2000-01-01",
            },
            {
                "resourceType": "MedicationRequest",
                "id": "r",
                "status": "active",
                "intent": "order",
                "subject": _SUBJECT,
                "medicationCodeableConcept": {"text": "prednisone"},
                "authoredOn": "2000-01-30",
            },
        ],
        InputKind.PROCEDURES: [
            {
                "resourceType": "Procedure",
                "id": "p",
                "status": "completed",
                "subject": _SUBJECT,
                "code": _coded(CPT, "97110"),
                "performedDateTime": "2000-01-15",
            }
        ],
        InputKind.SERVICE_REQUESTS: [
            {
                "resourceType": "ServiceRequest",
                "id": "s",
                "status": "active",
                "intent": "order",
                "subject": _SUBJECT,
                "code": _coded(CPT, "97161"),
                "authoredOn": "2000-01-15",
            }
        ],
    }


def check_terminology() -> None:
    """Validates value sets and red-flag criteria (ValueSetError names what is wrong), then warms up.

    Call once at start-up. The warm-up is also a self-check: if the synthetic record does not show the
    findings it was built to show, the mappings are broken and the service must not start.
    """
    check_criteria()
    record, _ = build_record(_warm_up_parts())
    order = {"resourceType": "ServiceRequest", "id": "x", "code": _coded(CPT, "72148")}
    result = findings(record, imaging_orders([order], ["ServiceRequest/x"]), _WARM_UP_DAY)
    expected = ("fever", "osteoporosis", "age-over-50")
    if not (all(result.is_present(flag) for flag in expected) and result.episode.active and result.orders):
        raise RuntimeError(
            "fhir_mappings start-up self-check failed: a synthetic record was not mapped as built"
        )
