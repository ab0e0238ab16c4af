"""Findings built by hand for the engine and card tests: only what each test states, the rest absent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from fhir_mappings.model import (
    RED_FLAG_IDS,
    ConservativeTherapy,
    DataGap,
    Episode,
    Evidence,
    Findings,
    FlagStatus,
    ImagingOrder,
    InputKind,
    Modality,
    OrderCoding,
    RedFlag,
)

AS_OF = date(2025, 6, 1)
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOW_BACK_PAIN_REASON = {"coding": [{"system": SNOMED, "code": "279039007", "display": "Low back pain"}]}

# CPT code and modality of each procedure, as the FHIR mappings would recognise them.
PROCEDURE_CODES: Mapping[str, tuple[Modality, str]] = {
    "xr-lumbar": ("XR", "72100"),
    "mri-lumbar-without-contrast": ("MRI", "72148"),
    "mri-lumbar-with-contrast": ("MRI", "72149"),
    "mri-lumbar-without-and-with-contrast": ("MRI", "72158"),
    "ct-lumbar-without-contrast": ("CT", "72131"),
    "ct-lumbar-with-contrast": ("CT", "72132"),
    "ct-lumbar-without-and-with-contrast": ("CT", "72133"),
    "ct-myelography-lumbar": ("CT", "24965-6"),
}


def evidence_for(flag_id: str) -> Evidence:
    return Evidence(
        reference=f"Condition/{flag_id}",
        code="X00.0",
        system=ICD10,
        display=f"Finding for {flag_id}",
        date="2025-05-20",
    )


def red_flags(present: Iterable[str] = (), unknown: Iterable[str] = ()) -> dict[str, RedFlag]:
    present, unknown = set(present), set(unknown)
    unknown_ids = (present | unknown) - set(RED_FLAG_IDS)
    assert not unknown_ids, f"test names unknown red flags {unknown_ids}"
    flags = {}
    for flag_id in RED_FLAG_IDS:
        if flag_id in present:
            flags[flag_id] = RedFlag(flag_id, FlagStatus.PRESENT, (evidence_for(flag_id),))
        elif flag_id in unknown:
            flags[flag_id] = RedFlag(flag_id, FlagStatus.UNKNOWN, unchecked=(InputKind.OBSERVATIONS,))
        else:
            flags[flag_id] = RedFlag(flag_id, FlagStatus.ABSENT)
    return flags


def service_request(order_id: str, procedure: str, **fields: Any) -> dict[str, Any]:
    _, code = PROCEDURE_CODES[procedure]
    system = "http://loinc.org" if "-" in code else CPT
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "plan",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "reasonCode": [LOW_BACK_PAIN_REASON],
    }
    resource.update(fields)
    return resource


def imaging_order(
    procedure: str,
    order_id: str | None = "o1",
    *,
    reason_lbp: bool = True,
    reason_flags: tuple[str, ...] = (),
    resource: Mapping[str, Any] | None = None,
) -> ImagingOrder:
    modality, code = PROCEDURE_CODES[procedure]
    if resource is None:
        resource = service_request(order_id or "no-id", procedure)
        if order_id is None:
            resource = {key: value for key, value in resource.items() if key != "id"}
    coding = resource["code"]["coding"][0] if resource.get("code") else {"system": CPT, "code": code}
    return ImagingOrder(
        reference=f"ServiceRequest/{order_id}" if order_id else "ServiceRequest/unidentified",
        resource_id=order_id,
        modality=modality,
        procedure=procedure,
        coding=OrderCoding(coding["system"], coding["code"], coding.get("display")),
        reason_names_low_back_pain=reason_lbp,
        reason_red_flags=reason_flags,
        resource=resource,
    )


def findings(
    *,
    present: Iterable[str] = (),
    unknown: Iterable[str] = (),
    symptom_days: int | None = 10,
    episode_active: bool = True,
    therapy: bool = False,
    orders: Iterable[ImagingOrder] = (),
    gaps: Iterable[DataGap] = (),
    age: int | None = 45,
) -> Findings:
    onset = date.fromordinal(AS_OF.toordinal() - symptom_days) if symptom_days is not None else None
    episode_evidence = (
        Evidence("Condition/lbp", "M54.50", ICD10, "Low back pain, unspecified", "2025-05-01"),
    )
    therapy_evidence = (Evidence("Procedure/pt1", "97110", CPT, "Therapeutic exercises", "2025-05-10"),)
    return Findings(
        as_of=AS_OF,
        patient_reference="Patient/p1",
        age_years=age,
        sex="female",
        episode=Episode(
            active=episode_active,
            onset=onset if episode_active else None,
            symptom_days=symptom_days if episode_active else None,
            evidence=episode_evidence if episode_active else (),
        ),
        therapy=ConservativeTherapy(therapy, therapy_evidence if therapy else ()),
        red_flags=red_flags(present, unknown),
        orders=tuple(orders),
        data_gaps=tuple(gaps),
    )
