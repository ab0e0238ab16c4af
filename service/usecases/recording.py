"""Keeping a decision: the audit record written before the advice leaves, and the log line's fields."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from service.cds.cards import CardIds, card_indicator
from service.metrics import observe_store_write
from service.rules import Decision
from service.runtime import Runtime
from service.store import AnswersRecord, QuestionLink
from service.usecases.audit_record import audit_record


def save_decision(
    runtime: Runtime,
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
    question_link: QuestionLink | None = None,
    answers: AnswersRecord | None = None,
) -> None:
    """Written before the response is sent, so no advice reaches a clinician without its audit record."""
    record = audit_record(
        decision,
        assessment_id=assessment_id,
        created_at=runtime.clock(),
        service_id=service_id,
        hook_instance=hook_instance,
        client_iss=client_iss,
        patient_reference=patient_reference,
        card_ids=card_ids,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        orderer_reference=orderer_reference,
    )
    write_started = time.perf_counter()
    try:
        runtime.store.save_assessment(record, question_link=question_link, answers=answers)
    except Exception:
        observe_store_write(time.perf_counter() - write_started, failed=True)
        raise
    observe_store_write(time.perf_counter() - write_started, failed=False)


def decision_log_fields(decision: Decision, assessment_id: str) -> dict[str, Any]:
    """The request log line names the rules that fired and the outcome (ids and codes only, no PHI)."""
    return {
        "outcome": "assessed",
        "assessmentId": assessment_id,
        "rulesVersion": decision.rules_version,
        "variants": list(decision.variant_ids()),
        "redFlags": list(decision.red_flag_ids()),
        "uncheckedRedFlags": [flag.id for flag in decision.unchecked_flags],
        "urgent": decision.urgent,
        "appropriateness": [judgement.appropriateness.value for judgement in decision.orders],
        "indicators": [card_indicator(decision, judgement) for judgement in decision.orders],
    }
