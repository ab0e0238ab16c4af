"""A CDS Hooks order-select / order-sign call, from the checked request to the answer and its audit record.

The route: find the lumbar imaging orders (`fhir_mappings.imaging_orders`) -> gather the prefetch, fetching
what is missing (`service.fetch`) -> 412 without the patient, or without conditions when no fetch could be
tried -> build the record (`fhir_mappings`) -> `decide` -> cards (`service.cds.cards`) -> the audit record,
written before the answer leaves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_mappings import build_record, imaging_orders
from fhir_mappings.model import ImagingOrder, InputKind
from service.cds.cards import build_hook_response
from service.cds.request import HookRequest, check_order_count, check_unique_orders
from service.cds.services import CdsService, ServiceCatalog
from service.errors import ApiError
from service.fetch import GatherResult
from service.runtime import Runtime
from service.usecases.decide import decide
from service.usecases.ports import Caller, RequestLog, no_request_log
from service.usecases.questions import offer_questions
from service.usecases.recording import decision_log_fields, save_decision
from service.wording.fetch_reasons import missing_reason, what_would_help, why_inputs_missing


@dataclass(frozen=True, slots=True)
class HookAnswer:
    body: dict[str, Any]  # the CDS Hooks response: {"cards": [...], "systemActions": [...]}
    assessment_id: str | None  # None when there was nothing to judge


def assess_hook(
    runtime: Runtime,
    service: CdsService,
    hook_request: HookRequest,
    *,
    caller: Caller,
    started: float | None = None,
    log: RequestLog = no_request_log,
) -> HookAnswer:
    """Judge the hook's lumbar imaging orders. Raises ApiError (400 duplicate order ids, 412 no patient)."""
    started = time.perf_counter() if started is None else started
    log(hookInstance=hook_request.hook_instance, service=service.id)
    orders = imaging_orders(hook_request.draft_orders, hook_request.selections)
    check_order_count(len(orders), "context.draftOrders")
    check_unique_orders(hook_request.draft_orders, {order.reference for order in orders})
    if not orders:
        log(outcome="no-lumbar-imaging")
        return HookAnswer(body={"cards": []}, assessment_id=None)

    catalog = runtime.catalog
    gathered = runtime.gatherer.gather(
        templates=service.prefetch,
        prefetch=hook_request.prefetch,
        context=hook_request.context,
        fhir_server=hook_request.fhir_server,
        fhir_authorization=hook_request.fhir_authorization,
        allowed_servers=caller.fhir_servers,
        hook_instance=hook_request.hook_instance,
    )
    log(
        fetch_ms=round(gathered.elapsed_ms, 1),
        fetched=list(gathered.fetched),
        fetch_missing=dict(gathered.missing),  # prefetch key -> reason code, no server detail
    )
    _require_inputs(catalog.required_prefetch, gathered.missing)
    return _judge(runtime, service, hook_request, orders, gathered, caller=caller, started=started, log=log)


def _judge(
    runtime: Runtime,
    service: CdsService,
    hook_request: HookRequest,
    orders: Sequence[ImagingOrder],
    gathered: GatherResult,
    *,
    caller: Caller,
    started: float,
    log: RequestLog,
) -> HookAnswer:
    catalog = runtime.catalog
    parts = _record_parts(gathered.values, catalog.prefetch_inputs)
    record, quality_notes = build_record(parts)
    record.incomplete.update(_partial_inputs(gathered, catalog, parts))
    findings, decision = decide(
        runtime.rules,
        record,
        orders,
        runtime.clock().date(),
        quality_notes=quality_notes,
        why_missing=why_inputs_missing(
            gathered.missing, gathered.truncated, catalog.prefetch_labels, catalog.prefetch_inputs
        ),
    )
    assessment_id = runtime.new_id()
    offer = offer_questions(
        runtime, decision, findings, assessment_id=assessment_id, fhir_server=hook_request.fhir_server
    )
    response = build_hook_response(
        decision,
        assessment_id=assessment_id,
        new_id=runtime.new_id,
        quiet_when_appropriate=runtime.settings.quiet_when_appropriate,
        extra_links=[offer.card_link] if offer else (),
    )
    save_decision(
        runtime,
        decision,
        assessment_id=assessment_id,
        service_id=service.id,
        hook_instance=hook_request.hook_instance,
        client_iss=caller.iss,
        patient_reference=findings.patient_reference or f"Patient/{hook_request.patient_id}",
        orderer_reference=hook_request.user_id,
        card_ids=response.card_ids,
        started=started,
        question_link=offer.record if offer else None,
    )
    log(**decision_log_fields(decision, assessment_id))
    return HookAnswer(body=response.body, assessment_id=assessment_id)


def _record_parts(values: Mapping[str, Any], kinds: Mapping[str, InputKind]) -> dict[InputKind, list[Any]]:
    parts: dict[InputKind, list[Any]] = {}
    for key, value in values.items():
        if key in kinds:
            parts.setdefault(kinds[key], []).append(value)
    return parts


def _partial_inputs(
    gathered: GatherResult, catalog: ServiceCatalog, parts: Mapping[InputKind, list[Any]]
) -> set[InputKind]:
    """A kind fed by several queries (MedicationRequest + MedicationStatement) of which one failed is only
    partly known: what is there is evidence, the absence of a finding in it proves nothing. A truncated
    result is also partial."""
    keys = (*gathered.missing, *gathered.truncated)
    return {catalog.prefetch_inputs[key] for key in keys if catalog.prefetch_inputs[key] in parts}


# Reasons that mean no fetch was ever tried: the EHR sent neither the data nor usable access to it.
_NO_FETCH_TRIED = ("-and-", "untrusted-fhirServer", "template-not-fillable")


def _require_inputs(required: Sequence[str], missing: Mapping[str, str]) -> None:
    """When to answer 412 (CDS Hooks 2.0: "the CDS Service SHALL respond with an HTTP 412" when it needs
    data it was neither sent nor given access to).

    Without the patient there is nobody to judge: 412, whatever the reason. Another required input
    (conditions) is a 412 only when no fetch could be tried. When a fetch was tried and the EHR's FHIR
    server was slow, erred or answered garbage, the clinician still gets the verdict that the order and the
    data at hand support: the missing input is a data gap named on the card with its reason, absent
    findings in it are unchecked (never "no red flag"), and the rating is withheld where it depends on it.
    """
    lacking = [key for key in required if key in missing and _answer_impossible(key, missing[key])]
    if lacking:
        reasons = "; ".join(f"{key}: {missing_reason(missing[key])}" for key in lacking)
        raise ApiError(
            412,
            "precondition-failed",
            f"cannot assess without the patient's {' and '.join(lacking)} ({reasons}); "
            + what_would_help([missing[key] for key in lacking]),
            "prefetch",
        )


def _answer_impossible(key: str, reason: str) -> bool:
    return key == "patient" or any(marker in reason for marker in _NO_FETCH_TRIED)
