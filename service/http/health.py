"""Liveness, readiness and metrics for Docker, load balancers and Prometheus: nothing about patients.

`/healthz` is liveness only (the process answers: no database round trip, so a database outage does not
get every replica restarted); `/readyz` says whether this replica can serve (database reachable, schema
current, rules and value sets loaded) for a load balancer to route to it; `/metrics` is for Prometheus,
behind CDS_METRICS_TOKEN or the admin token.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from service.errors import ApiError
from service.http.context import runtime
from service.http.request_log import annotate
from service.metrics import exposition
from service.store import StoreError
from service.store.migrations import latest_version

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    context = runtime()
    checks: dict[str, str] = {}
    try:
        version = context.store.schema_version()
        expected = latest_version()
        checks["database"] = "ok"
        checks["schema"] = "ok" if version == expected else f"version {version}, release expects {expected}"
    except StoreError:
        checks["database"] = "unreachable"
        checks["schema"] = "unknown"
    checks["rules"] = f"ok ({context.rules.version})" if context.rules.variants else "not loaded"
    ready = all(value.startswith("ok") for value in checks.values())
    response = jsonify({"status": "ready" if ready else "not-ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics() -> ResponseReturnValue:
    settings = runtime().settings
    tokens = [token for token in (settings.metrics_token, settings.admin_token) if token]
    if not tokens:
        raise ApiError(404, "not-found", "no such endpoint")
    scheme, _, presented = (request.headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(presented.strip().encode(), token.encode()) for token in tokens
    ):
        annotate(auth_failure="admin token missing or wrong")
        raise ApiError(401, "unauthorized", "unauthorized")
    body, content_type = exposition()
    return Response(body, content_type=content_type)
