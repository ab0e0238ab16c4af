"""A small real Flask app wired with init_security, and hand-made hostile tokens, for the security tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, g, jsonify, request
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from werkzeug.test import TestResponse

from service.config import Settings
from service.errors import ApiError
from service.http.errors import register_error_handlers
from service.http.request_log import annotate
from service.http.security import check_admin_token, init_security
from service.security import ClientRegistry, JwtVerifier, ReplayGuard
from tests.support.jwt_tokens import MemoryReplayGuard

BASE_URL = "https://cds.example.test"
ALT_BASE_URL = "https://cds-internal.example.test/lbp"  # a second public base URL (behind a proxy prefix)
SERVICE_PATH = "/cds-services/lbp-imaging-order-sign"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
MAX_BODY_BYTES = 2048
ADMIN_TOKEN = "admin-secret-for-tests-0123456789"
CDS_PATHS = ("/cds-services", SERVICE_PATH, SERVICE_PATH + "/feedback", "/evaluate")
LEEWAY_SECONDS = 60


def caller() -> dict[str, Any]:
    client = g.cds_client
    return {"iss": client.iss, "tenant": client.tenant} if client is not None else {"iss": None}


def security_test_app(settings: Settings, verifier: JwtVerifier | None) -> Flask:
    """Routes shaped like the service's: discovery, a service, feedback, /evaluate, health, one admin."""
    app = Flask("security-test")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    register_error_handlers(app)
    init_security(app, settings=settings, verifier=verifier)

    def json_object() -> dict[str, Any]:
        body = request.get_json()  # invalid JSON -> 400, too large -> 413, through the error handlers
        if not isinstance(body, dict):
            raise ApiError(400, "invalid-request", "the body must be a JSON object")
        return body

    @app.get("/cds-services")
    def discovery() -> ResponseReturnValue:
        return jsonify(caller())

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str) -> ResponseReturnValue:
        body = json_object()
        annotate(hookInstance=body.get("hookInstance"), service=service_id, rules=["r-1"], outcome="ok")
        return jsonify(caller())

    @app.post("/cds-services/<service_id>/feedback")
    def feedback(service_id: str) -> ResponseReturnValue:
        json_object()
        return jsonify(caller())

    @app.post("/evaluate")
    def evaluate() -> ResponseReturnValue:
        json_object()
        return jsonify(caller())

    @app.get("/healthz")
    def health() -> ResponseReturnValue:
        return jsonify({"status": "ok"})

    @app.post("/admin/purge")
    def purge() -> ResponseReturnValue:
        check_admin_token(settings.admin_token, request.headers.get("Authorization"))
        return jsonify({"purged": 0})

    return app


def settings_for_tests(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "auth": "required",
        "public_base_urls": (BASE_URL, ALT_BASE_URL),
        "cors_origins": (SANDBOX_ORIGIN,),
        "admin_token": ADMIN_TOKEN,
    }
    values.update(changes)
    return Settings(**values)


def verifier_for(
    clients_file: Path,
    clock: Callable[[], datetime],
    replay_guard: ReplayGuard | None = None,
    **options: Any,
) -> JwtVerifier:
    """A verifier as the app builds one: clients from the file, the test base URLs, 60 s of leeway."""
    settings: dict[str, Any] = {
        "audiences": (BASE_URL, ALT_BASE_URL),
        "leeway_seconds": LEEWAY_SECONDS,
        "jwks_timeout_seconds": 2,
        "clock": clock,
    }
    settings.update(options)
    return JwtVerifier(ClientRegistry.load(clients_file), replay_guard or MemoryReplayGuard(), **settings)


def preflight(http: FlaskClient, path: str, origin: str = SANDBOX_ORIGIN) -> TestResponse:
    """The CORS preflight a browser (the CDS Hooks Sandbox) sends before a POST with a JWT."""
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft_token(header: dict[str, Any], claims: dict[str, Any], signer: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, for tokens PyJWT refuses to make (alg none, HMAC with a public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(signer(signing_input.encode()))}"
