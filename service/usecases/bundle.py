"""`/evaluate`: one FHIR Bundle (record and draft orders) judged as of a date, for systems that are not
CDS clients. The same route as a hook: `fhir_mappings` -> `decide` -> the answer -> the audit record."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings import imaging_orders, record_from_bundle
from fhir_mappings.model import Findings
from service.cds.request import check_order_count
from service.errors import bad_request
from service.evaluate_answer import evaluate_answer
from service.questions.questionnaire import WHOLE_SET_URL
from service.questions.responses import read_response
from service.rules import Decision
from service.runtime import Runtime
from service.store import AnswersRecord, AnswersSource
from service.usecases.decide import decide, judge
from service.usecases.ports import Caller, RequestLog, no_request_log
from service.usecases.questions import answers_record
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
    response = _questionnaire_response(bundle)
    findings, decision = decide(runtime.rules, record, orders, as_of, quality_notes=quality_notes)
    assessment_id = runtime.new_id()
    answers = None
    if response is not None:
        where, resource = response
        decision, answers = _with_answers(runtime, findings, decision, resource, where, assessment_id)
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
        answers=answers,
    )
    log(**decision_log_fields(decision, assessment_id))
    body = evaluate_answer(decision, assessment_id=assessment_id)
    if answers is not None:
        body["answers"] = answers_json(answers)
    return BundleAnswer(body=body, assessment_id=assessment_id)


def _questionnaire_response(bundle: dict[str, Any]) -> tuple[str, Any] | None:
    """The Bundle's QuestionnaireResponse (at most one) and where it is."""
    found = [
        (f"entry[{index}].resource", entry["resource"])
        for index, entry in enumerate(bundle.get("entry") or [])
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == "QuestionnaireResponse"
    ]
    if len(found) > 1:
        raise bad_request("at most one QuestionnaireResponse (the red-flag answers) per Bundle", found[1][0])
    return found[0] if found else None


def _with_answers(
    runtime: Runtime, findings: Findings, decision: Decision, resource: Any, where: str, assessment_id: str
) -> tuple[Decision, AnswersRecord]:
    """The decision judged again with the clinician's answers (to the whole set of red-flag questions)."""
    patient = findings.patient_reference
    answers = read_response(
        resource,
        catalog=runtime.questions,
        questionnaire_url=WHOLE_SET_URL,
        asked=tuple(runtime.questions.questions),
        now=runtime.clock(),
        is_patient=(lambda reference: reference == patient) if patient else None,
        where=where,
    )
    _, after = judge(runtime.rules, findings, answers)
    record = answers_record(
        assessment_id, answers, decision, after, runtime.clock(), source=AnswersSource.EVALUATE
    )
    return after, record


def answers_json(record: AnswersRecord) -> dict[str, Any]:
    """What the answers did: the answers as codes, the verdict without them, and whether they changed it."""
    return {
        "questionnaire": WHOLE_SET_URL,
        "answers": [{"redFlag": flag, "answer": answer} for flag, answer in record.answers],
        "verdictWithoutAnswers": record.verdict_before,
        "changed": record.changed,
    }
