"""CDS Hooks endpoints: discovery and the two order hooks. Thin: parse, gather, assess, answer."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from fhir_mappings import build_record, imaging_orders
from fhir_mappings.model import DataGap, InputKind
from service.assessment import assess_record, save_assessment
from service.cds.cards import build_hook_response
from service.cds.request import HookRequest, parse_hook_request
from service.cds.services import CdsService
from service.errors import ApiError
from service.http.body import read_json_body
from service.runtime import Runtime, runtime
from service.security import annotate

blueprint = Blueprint("cds_hooks", __name__)

# Why a prefetch key could not be had, in words for the card (no server detail, no PHI).
_MISSING_REASONS = {
    "not-prefetched-and-no-fhirServer": "not prefetched, and no FHIR server access was granted",
    "untrusted-fhirServer": "not prefetched, and the FHIR server is not on this client's allowlist",
    "timeout": "the FHIR server did not answer in time",
    "deadline": "the FHIR server did not answer in time",
}


@blueprint.get("/cds-services")
def discovery() -> ResponseReturnValue:
    return jsonify(runtime().catalog.discovery())


def _service(runtime_: Runtime, service_id: str) -> CdsService:
    service = runtime_.catalog.services.get(service_id)
    if service is None:
        raise ApiError(404, "unknown-service", f"no CDS service with id {service_id!r}", "id")
    return service


def _allowed_fhir_servers(runtime_: Runtime) -> tuple[str, ...]:
    client = g.get("cds_client")
    if client is not None:
        return tuple(client.fhir_servers)
    # Auth disabled (local demos): the servers named in the clients file, if one is configured.
    return tuple(runtime_.clients.all_fhir_servers()) if runtime_.clients is not None else ()


def _missing_reason(reason: str) -> str:
    if reason.startswith("http-"):
        return f"the FHIR server answered with an error ({reason.removeprefix('http-')})"
    return _MISSING_REASONS.get(reason, f"it could not be fetched ({reason})")


def _fetch_gaps(missing: Mapping[str, str], kinds: Mapping[str, InputKind]) -> list[DataGap]:
    """Say which prefetch queries could not be run and why, beside the mappings' own gaps."""
    return [
        DataGap(
            id=f"{key}-not-available",
            description=f"{key}: {_missing_reason(reason)}.",
            affects=(kinds[key].value,),
        )
        for key, reason in sorted(missing.items())
    ]


def _record_parts(values: Mapping[str, Any], kinds: Mapping[str, InputKind]) -> dict[InputKind, list[Any]]:
    parts: dict[InputKind, list[Any]] = {}
    for key, value in values.items():
        if key in kinds:
            parts.setdefault(kinds[key], []).append(value)
    return parts


def _require_inputs(required: Sequence[str], missing: Mapping[str, str]) -> None:
    """The spec's rule: without the data it needs, a service answers 412."""
    lacking = [key for key in required if key in missing]
    if lacking:
        reasons = "; ".join(f"{key}: {_missing_reason(missing[key])}" for key in lacking)
        raise ApiError(
            412,
            "precondition-failed",
            f"cannot assess without the patient's {' and '.join(lacking)} ({reasons}); "
            "prefetch them or grant fhirServer and fhirAuthorization",
            "prefetch",
        )


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str) -> ResponseReturnValue:
    started = time.perf_counter()
    runtime_ = runtime()
    service = _service(runtime_, service_id)
    body = read_json_body(request, max_depth=runtime_.settings.max_json_depth)
    hook_request = parse_hook_request(body, service, max_resources=runtime_.settings.max_resources)
    annotate(hookInstance=hook_request.hook_instance, service=service.id)

    orders = imaging_orders(hook_request.draft_orders, hook_request.selections)
    if not orders:
        annotate(outcome="no-lumbar-imaging")
        return jsonify({"cards": []})
    return jsonify(_assess_orders(runtime_, service, hook_request, orders, started))


def _assess_orders(
    runtime_: Runtime, service: CdsService, hook_request: HookRequest, orders: Sequence[Any], started: float
) -> dict[str, Any]:
    catalog = runtime_.catalog
    gathered = runtime_.gatherer.gather(
        templates=service.prefetch,
        prefetch=hook_request.prefetch,
        context=hook_request.context,
        fhir_server=hook_request.fhir_server,
        fhir_authorization=hook_request.fhir_authorization,
        allowed_servers=_allowed_fhir_servers(runtime_),
    )
    annotate(fetch_ms=round(gathered.elapsed_ms, 1), fetched=list(gathered.fetched))
    _require_inputs(catalog.required_prefetch, gathered.missing)

    parts = _record_parts(gathered.values, catalog.prefetch_inputs)
    record, quality_notes = build_record(parts)
    # A kind fed by several queries (MedicationRequest + MedicationStatement) of which one failed is
    # only partly known: what is there is evidence, the absence of a finding in it proves nothing.
    record.incomplete.update(
        kind for key, kind in catalog.prefetch_inputs.items() if key in gathered.missing and kind in parts
    )
    as_of = runtime_.clock().date()
    findings, decision = assess_record(
        runtime_.rules,
        record,
        orders,
        as_of,
        quality_notes=quality_notes,
        extra_gaps=_fetch_gaps(gathered.missing, catalog.prefetch_inputs),
    )
    assessment_id = runtime_.new_id()
    response = build_hook_response(
        decision,
        assessment_id=assessment_id,
        new_id=runtime_.new_id,
        quiet_when_appropriate=runtime_.settings.quiet_when_appropriate,
    )
    client = g.get("cds_client")
    save_assessment(
        runtime_,
        decision,
        assessment_id=assessment_id,
        service_id=service.id,
        hook_instance=hook_request.hook_instance,
        client_iss=client.iss if client is not None else None,
        patient_reference=findings.patient_reference or f"Patient/{hook_request.patient_id}",
        card_ids=response.card_ids,
        started=started,
    )
    return response.body
