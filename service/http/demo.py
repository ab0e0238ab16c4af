"""The demo room: an order-entry page that plays the EHR (`/demo`), and what it reads.

Registered only when CDS_DEMO=true, which start-up allows only with CDS_AUTH=disabled: the page calls the
hooks as the CDS Hooks Sandbox does, without a JWT, so it must never exist where real patients are.

- `GET /demo`, `GET /demo/static/<file>`: the page (plain JavaScript, nothing from a CDN).
- `GET /demo/api/config`: where the page reads patient data from, what it prefetches itself and what it
  leaves to the service to fetch (`CDS_DEMO_FHIR_SERVER`), the orders and reasons it offers.
- `GET /demo/api/patients`, `GET /demo/api/draft-order`: the patient picker and a draft ServiceRequest.
- `GET /demo/fhir/...`: the "EHR's FHIR server" the page fills prefetch from: the sample patients, dated
  to today, or a read-only pass-through to `CDS_DEMO_FHIR_SERVER` (the compose demo's HAPI FHIR).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from service.demo.orders import ORDER_REASONS, draft_order
from service.demo.patients import (
    DEFAULT_FOLDER,
    SEARCHABLE_TYPES,
    SamplePatients,
    UnknownSamplePatient,
    age_on,
    load_sample_patients,
    searchset,
)
from service.errors import ApiError
from service.http.context import runtime

STATIC = Path(__file__).resolve().parents[1] / "demo" / "static"
# The page's own files only; inline scripts and styles are refused, so injected markup cannot run.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_MEDIA_TYPES = {
    "index.html": "text/html",
    "demo.js": "text/javascript",
    "markdown.js": "text/javascript",
    "demo.css": "text/css",
}
_PROXY_TIMEOUT_SECONDS = 5.0
_FHIR_JSON = "application/fhir+json"

blueprint = Blueprint("demo", __name__)


def _samples() -> SamplePatients:
    context = runtime()
    folder = context.settings.demo_patients_folder
    return load_sample_patients(Path(folder) if folder else DEFAULT_FOLDER, context.clock().date())


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=1)
def _files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: name -> (content, media type)."""
    return {name: ((STATIC / name).read_bytes(), media) for name, media in _MEDIA_TYPES.items()}


def _file(name: str) -> Response:
    content, media = _files()[name]
    return _secure(Response(content, mimetype=media))


@blueprint.get("/demo")
def page() -> ResponseReturnValue:
    return _file("index.html")


@blueprint.get("/demo/static/<name>")
def static_file(name: str) -> ResponseReturnValue:
    if name == "index.html" or name not in _MEDIA_TYPES:
        raise ApiError(404, "not-found", f"no demo file {name!r}")
    return _file(name)


@blueprint.get("/demo/api/config")
def config() -> ResponseReturnValue:
    settings = runtime().settings
    samples = _samples()
    return jsonify(
        {
            "fhirBase": request.host_url.rstrip("/") + "/demo/fhir",
            # With a FHIR server the service can reach, the page prefetches only the patient and lets the
            # service fetch the rest from it, as an EHR that prefetches little does.
            "fhirServer": settings.demo_fhir_server,
            "prefetchKeys": ["patient"] if settings.demo_fhir_server else None,
            "orders": [{"procedure": procedure, **code} for procedure, code in samples.order_codes.items()],
            "reasons": [dict(reason) for reason in ORDER_REASONS],
            "practitioner": "Practitioner/demo-clinician",
        }
    )


@blueprint.get("/demo/api/patients")
def patients() -> ResponseReturnValue:
    samples = _samples()
    today = runtime().clock().date()
    return jsonify(
        {
            "patients": [
                {**patient.summary(), "age": age_on(patient.birth_date, today)}
                for patient in samples.patients.values()
            ]
        }
    )


@blueprint.get("/demo/api/draft-order")
def draft() -> ResponseReturnValue:
    samples = _samples()
    patient_id = request.args.get("patient", "")
    procedure = request.args.get("procedure", "")
    try:
        samples.get(patient_id)
    except UnknownSamplePatient:
        if not runtime().settings.demo_fhir_server:
            raise ApiError(404, "not-found", f"no sample patient {patient_id!r}", "patient") from None
    return jsonify(
        draft_order(
            samples.order_codes,
            patient_id=patient_id,
            procedure=procedure,
            reason=request.args.get("reason") or None,
            order_number=request.args.get("n", "1"),
        )
    )


@blueprint.get("/demo/fhir/<resource_type>")
@blueprint.get("/demo/fhir/<resource_type>/<resource_id>")
def fhir(resource_type: str, resource_id: str | None = None) -> ResponseReturnValue:
    if resource_type != "Patient" and resource_type not in SEARCHABLE_TYPES:
        return _outcome(404, "not-supported", f"the demo FHIR server does not serve {resource_type}")
    server = runtime().settings.demo_fhir_server
    if server:
        return _pass_through(server, resource_type, resource_id)
    samples = _samples()
    if resource_id is not None:
        resource = samples.read(resource_type, resource_id)
        if resource is None:
            return _outcome(404, "not-found", f"{resource_type}/{resource_id} is not a sample resource")
        return _fhir_json(dict(resource))
    patient_id = request.args.get("patient", "").removeprefix("Patient/")
    if resource_type == "Patient" or not patient_id:
        return _outcome(400, "required", "searches need a patient parameter (Condition?patient=...)")
    codes = request.args.get("code", "").split(",")
    try:
        found = samples.search(resource_type, patient_id, codes)
    except UnknownSamplePatient:
        found = []  # as a FHIR server answers a search for a patient it does not hold
    return _fhir_json(searchset(found, request.host_url.rstrip("/") + "/demo/fhir"))


def _pass_through(server: str, resource_type: str, resource_id: str | None) -> ResponseReturnValue:
    url = f"{server.rstrip('/')}/{resource_type}" + (f"/{resource_id}" if resource_id else "")
    try:
        answer = requests.get(
            url,
            params=list(request.args.items(multi=True)),
            headers={"Accept": _FHIR_JSON},
            timeout=_PROXY_TIMEOUT_SECONDS,
        )
        body = answer.json()
    except (requests.RequestException, ValueError):
        return _outcome(502, "transient", "the demo FHIR server did not answer with FHIR JSON")
    return _fhir_json(body, status=answer.status_code)


def _fhir_json(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)  # application/json, which FHIR accepts for its JSON format as the page asks
    response.status_code = status
    return response


def _outcome(status: int, code: str, text: str) -> Response:
    return _fhir_json(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        },
        status=status,
    )
