"""A hook request with about 200 prefetched resources shaped like a real record (mostly not red flags):
the load of the order-sign benchmark (`bench/order_sign.py`) and of the tests that it stays correct."""

from __future__ import annotations

from typing import Any

from tests.api.test_hooks import example_request

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _condition(index: int, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c{index}",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": code, "display": "synthetic"}]},
        "subject": {"reference": "Patient/example-lbp-1"},
        "onsetDateTime": f"20{10 + index % 16:02d}-0{1 + index % 9}-15",
    }


def _observation(index: int) -> dict[str, Any]:
    temperature = index % 2 == 0
    return {
        "resourceType": "Observation",
        "id": f"o{index}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8310-5" if temperature else "29463-7"}]},
        "subject": {"reference": "Patient/example-lbp-1"},
        "effectiveDateTime": f"2026-{1 + index % 11:02d}-{1 + index % 27:02d}T08:00:00Z",
        "valueQuantity": {"value": 36.9, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}
        if temperature
        else {"value": 70 + index % 3, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def _medication(index: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"m{index}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": str(197000 + index)}]},
        "subject": {"reference": "Patient/example-lbp-1"},
        "authoredOn": "2026-06-01",
    }


def _procedure(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"p{index}",
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": str(99200 + index)}]},
        "subject": {"reference": "Patient/example-lbp-1"},
        "performedDateTime": "2025-03-01",
    }


def large_request() -> dict[str, Any]:
    """About 200 resources, shaped like a real record: mostly things that are not red flags."""
    # A typical problem list: many unrelated diagnoses, one low back pain episode, one cancer history.
    codes = [
        "M54.50", "Z85.3",
        "I10", "E11.9", "J45.909", "K21.9", "F41.1", "E78.5", "E66.9", "G47.33", "M17.11", "N40.0",
        "H52.4", "J30.9", "K58.9", "L40.0", "M79.7", "R51.9", "Z00.00", "Z23", "E03.9", "F32.A",
    ]  # fmt: skip

    def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}

    request = example_request()
    prefetch = request["prefetch"]
    prefetch["conditions"] = bundle(
        [_condition(i, codes[i] if i < len(codes) else codes[2 + i % 20]) for i in range(60)]
    )
    prefetch["observations"] = bundle([_observation(i) for i in range(80)])
    prefetch["medicationRequests"] = bundle([_medication(i) for i in range(30)])
    prefetch["procedures"] = bundle([_procedure(i) for i in range(30)])
    return request
