"""Builders for small synthetic FHIR R4 resources (no real patient data), for tests of any layer.

Dates are given as days before `AS_OF` so boundary pairs read plainly: `condition("R33.9", onset=30)`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from fhir_mappings.model import InputKind, PatientRecord

AS_OF = date(2026, 11, 26)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

_ids = itertools.count(1)
Resource = dict[str, Any]
When = int | str | None  # days before AS_OF, or a FHIR date string as written


def day(days_ago: int) -> str:
    return (AS_OF - timedelta(days=days_ago)).isoformat()


def _date(when: When) -> str | None:
    return day(when) if isinstance(when, int) else when


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def concept(code: str, system: str = ICD10, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def patient(birth_date: str | None = "1970-06-15", gender: str = "female", id: str = "p1") -> Resource:
    resource: Resource = {"resourceType": "Patient", "id": id, "gender": gender}
    if birth_date is not None:
        resource["birthDate"] = birth_date
    return resource


def birth_date_for_age(years: int) -> str:
    """A birth date that makes the patient exactly `years` old on AS_OF (birthday today)."""
    return AS_OF.replace(year=AS_OF.year - years).isoformat()


def condition(
    code: str,
    system: str = ICD10,
    *,
    clinical: str | None = "active",
    verification: str | None = None,
    onset: When = None,
    recorded: When = None,
    display: str | None = None,
    id: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "id": id or _next_id("c"),
        "subject": {"reference": "Patient/p1"},
        "code": concept(code, system, display),
    }
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification is not None:
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    if onset is not None:
        resource["onsetDateTime"] = _date(onset)
    if recorded is not None:
        resource["recordedDate"] = _date(recorded)
    resource.update(extra)
    return resource


def observation(
    loinc: str,
    value: float | int | None,
    unit: str | None,
    *,
    when: When = 1,
    status: str = "final",
    id: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": id or _next_id("o"),
        "status": status,
        "code": concept(loinc, LOINC),
        "subject": {"reference": "Patient/p1"},
    }
    if when is not None:
        resource["effectiveDateTime"] = _date(when)
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity.update(unit=unit, system=UCUM, code=unit)
        resource["valueQuantity"] = quantity
    resource.update(extra)
    return resource


def temperature(value: float, unit: str | None = "Cel", **kwargs: Any) -> Resource:
    return observation("8310-5", value, unit, **kwargs)


def weight(value: float, unit: str | None = "kg", **kwargs: Any) -> Resource:
    return observation("29463-7", value, unit, **kwargs)


def medication_statement(
    drug: Mapping[str, Any],
    *,
    start: When = None,
    end: When = None,
    when: When = None,
    status: str = "active",
    id: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "MedicationStatement",
        "id": id or _next_id("ms"),
        "status": status,
        "medicationCodeableConcept": copy.deepcopy(dict(drug)),
        "subject": {"reference": "Patient/p1"},
    }
    if start is not None or end is not None:
        period = {"start": _date(start), "end": _date(end)}
        resource["effectivePeriod"] = {key: value for key, value in period.items() if value is not None}
    if when is not None:
        resource["effectiveDateTime"] = _date(when)
    resource.update(extra)
    return resource


def medication_request(
    drug: Mapping[str, Any],
    *,
    authored: When = None,
    supply_days: int | None = None,
    repeats: int | None = None,
    status: str = "active",
    id: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": id or _next_id("mr"),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": copy.deepcopy(dict(drug)),
        "subject": {"reference": "Patient/p1"},
    }
    if authored is not None:
        resource["authoredOn"] = _date(authored)
    dispense: dict[str, Any] = {}
    if supply_days is not None:
        dispense["expectedSupplyDuration"] = {
            "value": supply_days,
            "unit": "days",
            "system": UCUM,
            "code": "d",
        }
    if repeats is not None:
        dispense["numberOfRepeatsAllowed"] = repeats
    if dispense:
        resource["dispenseRequest"] = dispense
    resource.update(extra)
    return resource


def drug(text: str, rxnorm: str | None = None) -> dict[str, Any]:
    if rxnorm is None:
        return {"text": text}
    return {"coding": [{"system": RXNORM, "code": rxnorm, "display": text}], "text": text}


def procedure(
    code: str, system: str = CPT, *, status: str = "completed", performed: When = 10, id: str | None = None
) -> Resource:
    resource: Resource = {
        "resourceType": "Procedure",
        "id": id or _next_id("pr"),
        "status": status,
        "code": concept(code, system),
        "subject": {"reference": "Patient/p1"},
    }
    if performed is not None:
        resource["performedDateTime"] = _date(performed)
    return resource


def service_request(
    code: str,
    system: str = CPT,
    *,
    status: str = "active",
    authored: When = 5,
    id: str | None = None,
    reason_codes: Iterable[tuple[str, str]] = (),
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "id": id or _next_id("sr"),
        "status": status,
        "intent": "order",
        "code": concept(code, system),
        "subject": {"reference": "Patient/p1"},
    }
    if authored is not None:
        resource["authoredOn"] = _date(authored)
    reasons = [concept(reason_code, reason_system) for reason_code, reason_system in reason_codes]
    if reasons:
        resource["reasonCode"] = reasons
    resource.update(extra)
    return resource


def bundle(*resources: Mapping[str, Any], type: str | None = "searchset") -> Resource:
    result: Resource = {
        "resourceType": "Bundle",
        "entry": [{"resource": copy.deepcopy(dict(r))} for r in resources],
    }
    if type is not None:
        result["type"] = type
    return result


def full_record(
    *,
    patient_resource: Mapping[str, Any] | None = None,
    conditions: Iterable[Mapping[str, Any]] = (),
    observations: Iterable[Mapping[str, Any]] = (),
    medications: Iterable[Mapping[str, Any]] = (),
    procedures: Iterable[Mapping[str, Any]] = (),
    service_requests: Iterable[Mapping[str, Any]] = (),
    missing: Iterable[InputKind] = (),
) -> PatientRecord:
    """A record with every input supplied (empty unless given), except the kinds in `missing`."""
    absent = set(missing)

    def part(kind: InputKind, items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
        return None if kind in absent else list(items)

    return PatientRecord(
        patient=None if InputKind.PATIENT in absent else (patient_resource or patient()),
        conditions=part(InputKind.CONDITIONS, conditions),
        observations=part(InputKind.OBSERVATIONS, observations),
        medications=part(InputKind.MEDICATIONS, medications),
        procedures=part(InputKind.PROCEDURES, procedures),
        service_requests=part(InputKind.SERVICE_REQUESTS, service_requests),
    )
