"""The Flask edge of security: the JWT guard on CDS endpoints, CORS, and the admin token check."""

from __future__ import annotations

import hmac
import logging
import re

from flask import Flask, Response, g, request
from flask_cors import CORS

from service.config import ConfigError, Settings
from service.errors import ApiError
from service.http.errors import error_response
from service.http.request_log import annotate, init_request_logging
from service.security.jwt_verifier import AuthenticationError, JwtVerifier

logger = logging.getLogger("lbp.security")

# Every route under /cds-services and /evaluate: discovery, the services, feedback, the REST twin.
# A routed path with an unknown service id gets 401 before 404, so an anonymous caller cannot probe
# which services exist; a path no route matches is a plain 404 either way.
GUARDED_PATHS = re.compile(r"^/(?:cds-services|evaluate)(?:/.*)?$")
CORS_ALLOWED_HEADERS = ("Authorization", "Content-Type")
CORS_METHODS = ("GET", "POST", "OPTIONS")
CORS_MAX_AGE_SECONDS = 600


def _unauthorized() -> Response:
    # Bare by design (CDS Hooks): the reason goes to the request log line, never to the caller.
    return error_response(ApiError(401, "unauthorized", "unauthorized"))


def init_security(app: Flask, *, settings: Settings, verifier: JwtVerifier | None) -> None:
    """Install the request log, the JWT guard and CORS on `app`. Call once, before other hooks.

    Every guarded request gets `flask.g.cds_client`: the AuthenticatedClient, or None when auth is
    disabled. A refused call is answered 401 `{"error": "unauthorized"}` with `WWW-Authenticate: Bearer`.
    """
    if settings.auth == "required" and verifier is None:
        raise ConfigError("CDS_AUTH=required needs CDS_CLIENTS_FILE (the trusted CDS clients)")
    init_request_logging(app)
    if settings.auth == "disabled":
        logger.warning(
            "authentication is DISABLED (CDS_AUTH=disabled): any caller can use this service; "
            "for local demos only, never with real patient data"
        )
    active_verifier = verifier if settings.auth == "required" else None

    def authenticate() -> Response | None:
        g.cds_client = None
        # Preflights carry no credentials by the CORS spec; flask-cors answers them.
        if request.method == "OPTIONS" or request.url_rule is None or not GUARDED_PATHS.match(request.path):
            return None
        if active_verifier is None:
            return None
        try:
            g.cds_client = active_verifier.verify(request.headers.get("Authorization"), request.path)
        except AuthenticationError as failure:
            annotate(auth_failure=failure.reason)
            return _unauthorized()
        return None

    app.before_request(authenticate)
    # flask-cors adds its headers in after_request, which also runs for error responses (401, 400, 413).
    CORS(
        app,
        resources={GUARDED_PATHS: {}},
        origins=list(settings.cors_origins),
        allow_headers=list(CORS_ALLOWED_HEADERS),
        methods=list(CORS_METHODS),
        max_age=CORS_MAX_AGE_SECONDS,
        supports_credentials=False,
    )


def _bearer_value(authorization_header: str | None) -> str:
    scheme, _, value = (authorization_header or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def check_admin_token(admin_token: str | None, authorization_header: str | None) -> None:
    """Raise ApiError 404 when no admin token is configured (the endpoint does not exist), 401 when the
    header does not carry it. Compared in constant time."""
    if not admin_token:
        raise ApiError(404, "not-found", "no such endpoint")
    presented = _bearer_value(authorization_header)
    if not hmac.compare_digest(presented.encode(), admin_token.encode()):
        annotate(auth_failure="admin token missing or wrong")
        raise ApiError(401, "unauthorized", "unauthorized")
