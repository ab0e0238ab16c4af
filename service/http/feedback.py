"""`POST /cds-services/{id}/feedback` (CDS Hooks 2.0): what the clinician did with each card.

Each item is checked (400 naming the item and field, e.g. `feedback[1].outcome`), linked to its
assessment through the card uuid, and committed before the 200 receipt is sent. A card this service did
not give to this client is kept and flagged rather than refused (the EHR cannot fix it by retrying), and a
repeated item is stored once. The clinician's `userComment` is checked but never stored or logged: it is
free text that can name the patient (see `service.store.records.FeedbackItem`).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from service.cds.feedback import parse_feedback
from service.errors import ApiError
from service.http.body import read_json_body
from service.http.context import cds_client, runtime
from service.http.request_log import annotate
from service.metrics import observe_feedback
from service.store.records import FeedbackItem

blueprint = Blueprint("feedback", __name__)


@blueprint.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> ResponseReturnValue:
    context = runtime()
    if service_id not in context.catalog.services:
        raise ApiError(404, "not-found", "no CDS service with this id")
    items = parse_feedback(read_json_body(request, context.settings))
    client = cds_client()
    receipt = context.store.save_feedback(service_id, items, client_iss=client.iss if client else None)
    annotate(feedback_items=receipt.received, feedback_linked=receipt.linked)
    reasons = context.rules.override_reasons
    observe_feedback(
        ((item.outcome.value, _reason_code(item, reasons.system)) for item in items),
        known_reasons=[reason.code for reason in (*reasons.standard, *reasons.urgent)],
    )
    return jsonify(receipt.as_json())


def _reason_code(item: FeedbackItem, system: str) -> str | None:
    """The override reason's code when it is one of ours; another system's codes count as `other`."""
    if item.override_reason is None:
        return None
    return item.override_reason.code if item.override_reason.system == system else ""
