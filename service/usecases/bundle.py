"""`/evaluate`: one FHIR Bundle (record and draft orders) judged as of a date, for systems that are not
CDS clients. The same route as a hook: `fhir_mappings` -> `decide` -> the answer -> the audit record."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings import imaging_orders, record_from_bundle
from service.cds.request import check_order_count
from service.evaluate_answer import evaluate_answer
from service.runtime import Runtime
from service.usecases.decide import decide
from service.usecases.ports import Caller, RequestLog, no_request_log
from service.usecases.recording import decision_log_fields, save_decision

EVALUATE_SERVICE_ID = "evaluate"


@dataclass(frozen=True, slots=True)
class BundleAnswer:
    body: dict[str, Any]  # the `/evaluate` answer (openapi.yaml `EvaluateResponse`)
    assessment_id: str


def assess_bundle(
    runtime: Runtime,
    bundle: dict[str, Any],
    as_of: date,
    *,
    caller: Caller,
    started: float | None = None,
    log: RequestLog = no_request_log,
) -> BundleAnswer:
    """Judge the Bundle's lumbar imaging orders against its record. The Bundle's envelope is checked."""
    started = time.perf_counter() if started is None else started
    record, draft_orders, quality_notes = record_from_bundle(bundle)
    orders = imaging_orders(draft_orders)
    check_order_count(len(orders), "entry")
    findings, decision = decide(runtime.rules, record, orders, as_of, quality_notes=quality_notes)
    assessment_id = runtime.new_id()
    save_decision(
        runtime,
        decision,
        assessment_id=assessment_id,
        service_id=EVALUATE_SERVICE_ID,
        hook_instance=None,
        client_iss=caller.iss,
        patient_reference=findings.patient_reference,
        card_ids=None,
        started=started,
    )
    log(**decision_log_fields(decision, assessment_id))
    return BundleAnswer(
        body=evaluate_answer(decision, assessment_id=assessment_id), assessment_id=assessment_id
    )
