"""`POST /evaluate`: the same assessment for systems that are not CDS clients, from one FHIR Bundle."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from service.cds.request import check_prefetch_value
from service.errors import bad_request
from service.http.body import read_json_body
from service.http.context import cds_client, runtime
from service.http.request_log import annotate
from service.usecases import Caller, assess_bundle

blueprint = Blueprint("evaluate", __name__)
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


def _bundle(body: Any, max_resources: int) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("request body must be a FHIR Bundle (a JSON object)")
    check_prefetch_value(body, "Bundle", max_resources)
    if body.get("resourceType") != "Bundle":
        raise bad_request("request body must be a FHIR Bundle", "Bundle.resourceType")
    return body


@blueprint.post("/evaluate")
def evaluate() -> ResponseReturnValue:
    started = time.perf_counter()
    runtime_ = runtime()
    as_of = _as_of(request.args.get("asOf"), runtime_.clock().date())
    body = read_json_body(request, runtime_.settings)
    bundle = _bundle(body, runtime_.settings.max_resources)
    answer = assess_bundle(
        runtime_,
        bundle,
        as_of,
        caller=Caller.of(cds_client(), runtime_.clients),
        started=started,
        log=annotate,
    )
    return jsonify(answer.body)
