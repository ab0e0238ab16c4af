"""`POST /evaluate`: the same assessment for systems that are not CDS clients, from one FHIR Bundle."""

from __future__ import annotations

import time
from datetime import date

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from fhir_mappings import imaging_orders, record_from_bundle
from service.assessment import annotate_decision, assess_record, save_assessment
from service.cds.request import check_prefetch_value
from service.errors import bad_request
from service.evaluate_answer import evaluate_answer
from service.http.body import read_json_body
from service.runtime import runtime

blueprint = Blueprint("evaluate", __name__)
EVALUATE_SERVICE_ID = "evaluate"
EARLIEST_AS_OF = date(1900, 1, 1)
LATEST_AS_OF = date(2999, 12, 31)


def _as_of(raw: str | None, today: date) -> date:
    if raw is None:
        return today
    try:
        as_of = date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"asOf must be an ISO date (YYYY-MM-DD), got {raw[:40]!r}", "asOf") from None
    if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        # Windows reach back a year from asOf; a date at the ends of the calendar is no clinical date.
        raise bad_request(
            f"asOf must be between {EARLIEST_AS_OF.isoformat()} and {LATEST_AS_OF.isoformat()}", "asOf"
        )
    return as_of


@blueprint.post("/evaluate")
def evaluate() -> ResponseReturnValue:
    started = time.perf_counter()
    runtime_ = runtime()
    as_of = _as_of(request.args.get("asOf"), runtime_.clock().date())
    bundle = read_json_body(request, max_depth=runtime_.settings.max_json_depth)
    if not isinstance(bundle, dict):
        raise bad_request("request body must be a FHIR Bundle (a JSON object)")
    check_prefetch_value(bundle, "Bundle", runtime_.settings.max_resources)
    if bundle.get("resourceType") != "Bundle":
        raise bad_request("request body must be a FHIR Bundle", "Bundle.resourceType")

    record, draft_orders, quality_notes = record_from_bundle(bundle)
    orders = imaging_orders(draft_orders)
    findings, decision = assess_record(
        runtime_.rules, record, orders, as_of, quality_notes=quality_notes, why_missing={}
    )
    assessment_id = runtime_.new_id()
    client = g.get("cds_client")
    save_assessment(
        runtime_,
        decision,
        assessment_id=assessment_id,
        service_id=EVALUATE_SERVICE_ID,
        hook_instance=None,
        client_iss=client.iss if client is not None else None,
        patient_reference=findings.patient_reference,
        card_ids=None,
        started=started,
    )
    annotate_decision(decision, assessment_id)
    return jsonify(evaluate_answer(decision, assessment_id=assessment_id))
