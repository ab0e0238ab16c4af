"""From a patient's record to a decision, and the audit record of it. Pure but for the store write."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from fhir_mappings import findings as map_findings
from fhir_mappings.model import DataGap, DataQualityNote, Findings, ImagingOrder, InputKind, PatientRecord
from service.cds.cards import CardIds
from service.rules import Decision, Rules, assess
from service.runtime import Runtime
from service.security import annotate
from service.store import AssessmentRecord, EvidenceReference, OrderRecord


def _explained(gaps: tuple[DataGap, ...], why: Mapping[InputKind, Sequence[str]]) -> tuple[DataGap, ...]:
    """Add to each input's gap why that input is missing or partial, so the card has one line per input.

    The mappings name their input gaps `<kind>-not-supplied` / `<kind>-incomplete`, kind as in
    `fhir_mappings.findings._gap_name` (InputKind name, lower case, `_` -> `-`).
    """
    explained: list[DataGap] = []
    unmatched = dict(why)
    for gap in gaps:
        kind = next((k for k in unmatched if gap.id in _input_gap_ids(k)), None)
        if kind is None:
            explained.append(gap)
            continue
        reasons = "; ".join(unmatched.pop(kind))
        explained.append(replace(gap, description=f"{gap.description} Why: {reasons}."))
    # A reason with no gap of its own (the input was read in part but still proved complete enough).
    explained.extend(
        DataGap(id=f"{_gap_name(kind)}-partly-read", description=f"{'; '.join(reasons)}.")
        for kind, reasons in unmatched.items()
    )
    return tuple(explained)


def _gap_name(kind: InputKind) -> str:
    return kind.name.lower().replace("_", "-")


def _input_gap_ids(kind: InputKind) -> set[str]:
    return {f"{_gap_name(kind)}-not-supplied", f"{_gap_name(kind)}-incomplete"}


def assess_record(
    rules: Rules,
    record: PatientRecord,
    orders: Sequence[ImagingOrder],
    as_of: date,
    *,
    quality_notes: Iterable[DataQualityNote],
    why_missing: Mapping[InputKind, Sequence[str]],
) -> tuple[Findings, Decision]:
    """Map the record and judge it. `why_missing` says, per input, why it was missing or partial (the
    FHIR fetch's reasons), in a clinician's words."""
    findings = map_findings(record, orders, as_of)
    notes = tuple(quality_notes)
    if notes or why_missing:
        findings = replace(
            findings,
            data_quality=findings.data_quality + notes,
            data_gaps=_explained(findings.data_gaps, why_missing),
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


def annotate_decision(decision: Decision, assessment_id: str) -> None:
    """The request log line names the rules that fired and the outcome (ids and codes only, no PHI)."""
    annotate(
        outcome="assessed",
        assessmentId=assessment_id,
        rulesVersion=decision.rules_version,
        variants=list(decision.variant_ids()),
        redFlags=list(decision.red_flag_ids()),
        uncheckedRedFlags=[flag.id for flag in decision.unchecked_flags],
        urgent=decision.urgent,
        appropriateness=[judgement.appropriateness.value for judgement in decision.orders],
    )
