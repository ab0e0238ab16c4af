"""The admin read API: one assessment's whole story, and the summary report.

`GET /assessments/{assessmentId}` and `GET /reports/summary?from=&to=[&orderer=Practitioner/123]` need
`Authorization: Bearer $CDS_ADMIN_TOKEN`; without a configured token they do not exist (404), so a default
install exposes no audit data. `orderer` gives one ordering clinician's report (matched on the keyed hash
of CDS Hooks `context.userId`; 400 when CDS_PATIENT_HASH_KEY is not set).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from service.errors import ApiError, bad_request
from service.http.context import runtime
from service.http.security import check_admin_token
from service.store import ReportParameterError, report_window
from service.store.schema import ID

blueprint = Blueprint("admin", __name__)


@blueprint.before_request
def _admin_only() -> None:
    check_admin_token(runtime().settings.admin_token, request.headers.get("Authorization"))


@blueprint.get("/assessments/<assessment_id>")
def get_assessment(assessment_id: str) -> ResponseReturnValue:
    known_shape = len(assessment_id) <= ID and assessment_id.isprintable()
    record = runtime().store.get_assessment(assessment_id) if known_shape else None
    if record is None:
        raise ApiError(
            404, "not-found", "no assessment with this id (it may have passed the retention period)"
        )
    return jsonify(record)


@blueprint.get("/reports/summary")
def summary_report() -> ResponseReturnValue:
    context = runtime()
    try:
        start, end = report_window(request.args.get("from"), request.args.get("to"), now=context.clock())
        summary = context.store.summary(start, end, orderer=request.args.get("orderer"))
    except ReportParameterError as error:
        raise bad_request(error.message, error.parameter) from None
    return jsonify(summary)
