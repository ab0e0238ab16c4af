"""From a patient's record to a decision, and the audit record of it. Pure but for the store write."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from fhir_mappings import findings as map_findings
from fhir_mappings.model import DataGap, DataQualityNote, Findings, ImagingOrder, PatientRecord
from service.cds.cards import CardIds
from service.rules import Decision, Rules, assess
from service.runtime import Runtime
from service.store import AssessmentRecord, EvidenceReference, OrderRecord


def assess_record(
    rules: Rules,
    record: PatientRecord,
    orders: Sequence[ImagingOrder],
    as_of: date,
    *,
    quality_notes: Iterable[DataQualityNote],
    extra_gaps: Iterable[DataGap],
) -> tuple[Findings, Decision]:
    findings = map_findings(record, orders, as_of)
    notes, gaps = tuple(quality_notes), tuple(extra_gaps)
    if notes or gaps:
        findings = replace(
            findings, data_quality=findings.data_quality + notes, data_gaps=findings.data_gaps + gaps
        )
    return findings, assess(findings, rules)


def audit_record(
    decision: Decision,
    *,
    assessment_id: str,
    created_at: datetime,
    service_id: str,
    hook_instance: str | None,
    client_iss: str | None,
    patient_reference: str | None,
    card_ids: Mapping[str, CardIds] | None,
    latency_ms: float,
    orderer_reference: str | None = None,
) -> AssessmentRecord:
    """What was advised, on what evidence, under which rules: references and codes, never record text."""
    findings = decision.findings
    evidence = tuple(
        EvidenceReference(
            finding=flag.id, reference=item.reference, system=item.system, code=item.code, date=item.date
        )
        for flag in decision.red_flags
        for item in flag.evidence
    ) + tuple(
        EvidenceReference(
            finding=finding, reference=item.reference, system=item.system, code=item.code, date=item.date
        )
        for finding, items in (("episode", findings.episode.evidence), ("therapy", findings.therapy.evidence))
        for item in items
    )
    orders = []
    for judgement in decision.orders:
        order = judgement.order
        ids = (card_ids or {}).get(order.reference)
        orders.append(
            OrderRecord(
                order_reference=order.reference,
                order_code_system=order.coding.system,
                order_code=order.coding.code,
                procedure=order.procedure,
                modality=order.modality,
                appropriateness=judgement.appropriateness.value,
                pama_rating=judgement.pama_rating.value,
                card_uuid=ids.card if ids else None,
                suggestion_uuids=tuple(s.uuid for s in ids.suggestions) if ids else (),
            )
        )
    return AssessmentRecord(
        assessment_id=assessment_id,
        created_at=created_at,
        service_id=service_id,
        rules_version=decision.rules_version,
        latency_ms=latency_ms,
        hook_instance=hook_instance,
        client_iss=client_iss,
        patient_reference=patient_reference,
        orderer_reference=orderer_reference,
        variants=decision.variant_ids(),
        red_flags=decision.red_flag_ids(),
        unchecked_red_flags=tuple(flag.id for flag in decision.unchecked_flags),
        evidence=evidence,
        data_gaps=tuple(gap.id for gap in decision.data_gaps),
        urgent=decision.urgent,
        orders=tuple(orders),
    )


def save_assessment(
    runtime_: Runtime,
    decision: Decision,
    *,
    assessment_id: str,
    service_id: str,
    hook_instance: str | None,
    client_iss: str | None,
    patient_reference: str | None,
    card_ids: Mapping[str, CardIds] | None,
    started: float,
    orderer_reference: str | None = None,
) -> None:
    """Written before the response is sent, so no advice reaches a clinician without its audit record."""
    runtime_.store.save_assessment(
        audit_record(
            decision,
            assessment_id=assessment_id,
            created_at=runtime_.clock(),
            service_id=service_id,
            hook_instance=hook_instance,
            client_iss=client_iss,
            patient_reference=patient_reference,
            card_ids=card_ids,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            orderer_reference=orderer_reference,
        )
    )
