"""The audit record of a decision: what was advised, on what evidence, under which rules.

References and codes only, never record text: the store keeps no names, birth dates or free text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from service.cds.cards import CardIds
from service.rules import Decision
from service.store import AssessmentRecord, EvidenceReference, OrderRecord


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
                # Only a rating that was written into the order: a withheld one is no rating.
                pama_rating=None if judgement.rating_withheld else judgement.pama_rating.value,
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
