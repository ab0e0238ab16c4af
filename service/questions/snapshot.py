"""The findings an assessment was judged on, kept until its questions are answered or the link expires,
so the answers re-judge exactly what the clinician saw (the record itself is never kept).

Codes, references, dates and the mappings' own measurements only: no names, birth dates or record text
(an evidence's `display` and the draft order's resource are left out), and the patient only as a check
value (`patient_check`).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from fhir_mappings.model import (
    ConservativeTherapy,
    DataGap,
    DataQualityNote,
    Episode,
    Evidence,
    Findings,
    FlagStatus,
    GapKind,
    ImagingOrder,
    InputKind,
    OrderCoding,
    RedFlag,
)

VERSION = 1


def _evidence(item: Evidence) -> dict[str, Any]:
    if "Patient" in item.reference.split("/"):
        # Age evidence: the Patient's id and its one dated fact, the birth date, are never kept.
        return {"reference": "Patient", **({"detail": item.detail} if item.detail else {})}
    fields = {"reference": item.reference, "code": item.code, "system": item.system}
    fields |= {"date": item.date, "detail": item.detail}
    return {key: value for key, value in fields.items() if value is not None}


def patient_check(assessment_id: str, patient_reference: str) -> str:
    """A one-way check value for "is this the patient assessed?", so the reference itself is not kept."""
    return hashlib.sha256(f"{assessment_id}\n{patient_reference}".encode()).hexdigest()


def _evidence_from(raw: dict[str, Any]) -> Evidence:
    return Evidence(**raw)


def _gap(gap: DataGap) -> dict[str, Any]:
    return {
        "id": gap.id,
        "kind": gap.kind.value,
        "affects": list(gap.affects),
        "input": gap.input.value if gap.input else None,
        "problem": gap.problem,
        "count": gap.count,
        "birthDate": None,  # a birth date is never kept; the gap's words say only "partial"/"after"
        "ages": list(gap.ages) if gap.ages else None,
        "why": list(gap.why),
        "answered": list(gap.answered),
    }


def _gap_from(raw: dict[str, Any]) -> DataGap:
    return DataGap(
        id=raw["id"],
        kind=GapKind(raw["kind"]),
        affects=tuple(raw["affects"]),
        input=InputKind(raw["input"]) if raw["input"] else None,
        problem=raw["problem"],
        count=raw["count"],
        birth_date=None,
        ages=(raw["ages"][0], raw["ages"][1]) if raw["ages"] else None,
        why=tuple(raw["why"]),
        answered=tuple(raw["answered"]),
    )


def _order(order: ImagingOrder) -> dict[str, Any]:
    return {
        "reference": order.reference,
        "resourceId": order.resource_id,
        "modality": order.modality,
        "procedure": order.procedure,
        "coding": {"system": order.coding.system, "code": order.coding.code},
        "reasonNamesLowBackPain": order.reason_names_low_back_pain,
        "reasonRedFlags": list(order.reason_red_flags),
    }


def _order_from(raw: dict[str, Any]) -> ImagingOrder:
    return ImagingOrder(
        reference=raw["reference"],
        resource_id=raw["resourceId"],
        modality=raw["modality"],
        procedure=raw["procedure"],
        coding=OrderCoding(raw["coding"]["system"], raw["coding"]["code"]),
        reason_names_low_back_pain=raw["reasonNamesLowBackPain"],
        reason_red_flags=tuple(raw["reasonRedFlags"]),
    )


def findings_to_json(findings: Findings, *, assessment_id: str) -> dict[str, Any]:
    reference = findings.patient_reference
    return {
        "version": VERSION,
        "asOf": findings.as_of.isoformat(),
        "patientCheck": patient_check(assessment_id, reference) if reference else None,
        "ageYears": findings.age_years,
        "sex": findings.sex,
        "episode": {
            "active": findings.episode.active,
            "onset": findings.episode.onset.isoformat() if findings.episode.onset else None,
            "symptomDays": findings.episode.symptom_days,
            "evidence": [_evidence(item) for item in findings.episode.evidence],
        },
        "therapy": {
            "documented": findings.therapy.documented,
            "evidence": [_evidence(item) for item in findings.therapy.evidence],
        },
        "redFlags": [
            {
                "id": flag.id,
                "status": flag.status.value,
                "evidence": [_evidence(item) for item in flag.evidence],
                "unchecked": [kind.value for kind in flag.unchecked],
            }
            for flag in findings.red_flags.values()
        ],
        "orders": [_order(order) for order in findings.orders],
        "dataGaps": [_gap(gap) for gap in findings.data_gaps],
        "dataQuality": [
            {"resourceType": note.resource_type, "resourceId": note.resource_id, "problem": note.problem}
            for note in findings.data_quality
        ],
    }


def findings_from_json(raw: dict[str, Any]) -> Findings:
    """The findings again, without the patient reference (see `patient_check`)."""
    if raw.get("version") != VERSION:
        raise ValueError(f"findings snapshot version {raw.get('version')!r} is not {VERSION}")
    episode = raw["episode"]
    return Findings(
        as_of=date.fromisoformat(raw["asOf"]),
        patient_reference=None,
        age_years=raw["ageYears"],
        sex=raw["sex"],
        episode=Episode(
            active=episode["active"],
            onset=date.fromisoformat(episode["onset"]) if episode["onset"] else None,
            symptom_days=episode["symptomDays"],
            evidence=tuple(_evidence_from(item) for item in episode["evidence"]),
        ),
        therapy=ConservativeTherapy(
            documented=raw["therapy"]["documented"],
            evidence=tuple(_evidence_from(item) for item in raw["therapy"]["evidence"]),
        ),
        red_flags={
            flag["id"]: RedFlag(
                id=flag["id"],
                status=FlagStatus(flag["status"]),
                evidence=tuple(_evidence_from(item) for item in flag["evidence"]),
                unchecked=tuple(InputKind(kind) for kind in flag["unchecked"]),
            )
            for flag in raw["redFlags"]
        },
        orders=tuple(_order_from(order) for order in raw["orders"]),
        data_gaps=tuple(_gap_from(gap) for gap in raw["dataGaps"]),
        data_quality=tuple(
            DataQualityNote(note["resourceType"], note["resourceId"], note["problem"])
            for note in raw["dataQuality"]
        ),
    )
