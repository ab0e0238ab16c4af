"""CDS Hooks endpoints: discovery and the two order hooks. Thin: parse, call the use case, answer."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from service.cds.request import parse_hook_request
from service.cds.services import CdsService
from service.errors import ApiError
from service.http.body import read_json_body
from service.http.context import cds_client, runtime
from service.http.request_log import annotate
from service.runtime import Runtime
from service.usecases import Caller, assess_hook

blueprint = Blueprint("cds_hooks", __name__)


@blueprint.get("/cds-services")
def discovery() -> ResponseReturnValue:
    return jsonify(runtime().catalog.discovery())


def _service(runtime_: Runtime, service_id: str) -> CdsService:
    service = runtime_.catalog.services.get(service_id)
    if service is None:
        raise ApiError(404, "unknown-service", f"no CDS service with id {service_id!r}", "id")
    return service


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str) -> ResponseReturnValue:
    started = time.perf_counter()
    runtime_ = runtime()
    service = _service(runtime_, service_id)
    body = read_json_body(request, runtime_.settings)
    hook_request = parse_hook_request(body, service, max_resources=runtime_.settings.max_resources)
    answer = assess_hook(
        runtime_,
        service,
        hook_request,
        caller=Caller.of(cds_client(), runtime_.clients),
        started=started,
        log=annotate,
    )
    return jsonify(answer.body)
