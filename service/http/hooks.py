"""CDS Hooks endpoints: discovery and the two order hooks. Thin: parse, gather, assess, answer."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from fhir_mappings import build_record, imaging_orders
from fhir_mappings.model import InputKind
from service.assessment import annotate_decision, assess_record, save_assessment
from service.cds.cards import build_hook_response
from service.cds.request import HookRequest, check_unique_orders, parse_hook_request
from service.cds.services import CdsService
from service.errors import ApiError
from service.http.body import read_json_body
from service.runtime import Runtime, runtime
from service.security import annotate

blueprint = Blueprint("cds_hooks", __name__)

# Why a prefetch key could not be had, in a clinician's words (no server detail, no PHI). The codes are
# `GatherResult.missing` reasons; `<how>-and-<why>` codes say how prefetch failed and why no fetch helped.
_NO_FETCH = {
    "no-fhirServer": "the EHR granted no FHIR server access",
    "no-fhirAuthorization": "the EHR granted no FHIR server access",
    "no-access-token": "the EHR granted no FHIR server access",
    "malformed-access-token": "the FHIR access token was unusable",
    "unsupported-token-type": "the FHIR access token was unusable",
    "untrusted-fhirServer": "the FHIR server is not on this client's allowlist",
    "template-not-fillable": "the query could not be built from the context",
}
_PREFETCH = {
    "not-prefetched": "it was not prefetched",
    "prefetch-failed": "the EHR's prefetch of it failed",
}
_FETCH_FAILED = {
    "deadline": "the EHR's FHIR server did not answer in time",
    "timeout": "the EHR's FHIR server did not answer in time",
    "too-large": "the EHR's FHIR server answered with more data than the service accepts",
    "connection-failed": "the EHR's FHIR server could not be reached",
    "tls-error": "the EHR's FHIR server could not be reached securely",
}
_TRUNCATED_REASONS = {
    "page-limit": "only the first pages of the result were read",
    "resource-limit": "the result held more resources than the service reads",
    "next-link-other-origin": "the rest of the result was on another server and was not read",
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
    how, _, why = reason.partition("-and-")
    if why:
        return (
            f"{_PREFETCH.get(how, 'it was not prefetched')} and {_NO_FETCH.get(why, 'could not be fetched')}"
        )
    if reason.startswith("http-"):
        return f"the EHR's FHIR server answered with an error (HTTP {reason.removeprefix('http-')})"
    return _FETCH_FAILED.get(reason, "the EHR's FHIR server gave an unusable answer")


def _why_missing(
    missing: Mapping[str, str],
    truncated: Mapping[str, str],
    labels: Mapping[str, str],
    kinds: Mapping[str, InputKind],
) -> dict[InputKind, list[str]]:
    """Per input, why its queries could not be read or were read only in part."""
    why: dict[InputKind, list[str]] = {}
    for key, reason in sorted(missing.items()):
        why.setdefault(kinds[key], []).append(f"{labels.get(key, key)}: {_missing_reason(reason)}")
    for key, reason in sorted(truncated.items()):
        words = _TRUNCATED_REASONS.get(reason, "the result was cut short")
        why.setdefault(kinds[key], []).append(f"{labels.get(key, key)}: {words}")
    return why


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
    check_unique_orders(hook_request.draft_orders, {order.reference for order in orders})
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
        hook_instance=hook_request.hook_instance,
    )
    annotate(fetch_ms=round(gathered.elapsed_ms, 1), fetched=list(gathered.fetched))
    _require_inputs(catalog.required_prefetch, gathered.missing)

    parts = _record_parts(gathered.values, catalog.prefetch_inputs)
    record, quality_notes = build_record(parts)
    # A kind fed by several queries (MedicationRequest + MedicationStatement) of which one failed is
    # only partly known: what is there is evidence, the absence of a finding in it proves nothing.
    # A truncated result is also partial.
    partial = {
        key for key in (*gathered.missing, *gathered.truncated) if catalog.prefetch_inputs[key] in parts
    }
    record.incomplete.update(catalog.prefetch_inputs[key] for key in partial)
    as_of = runtime_.clock().date()
    findings, decision = assess_record(
        runtime_.rules,
        record,
        orders,
        as_of,
        quality_notes=quality_notes,
        why_missing=_why_missing(
            gathered.missing, gathered.truncated, catalog.prefetch_labels, catalog.prefetch_inputs
        ),
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
        orderer_reference=hook_request.user_id,
        card_ids=response.card_ids,
        started=started,
    )
    annotate_decision(decision, assessment_id)
    return response.body
