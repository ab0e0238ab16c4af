"""One `lbp.request` JSON line per request, without PHI.

What a line may hold is decided here, not by each caller: the route pattern (never the query string),
status, duration, the caller's `iss`, and fields handlers add with `annotate(...)` (hookInstance, service,
rule ids, outcome...). The use cases report their fields through a `RequestLog` port; the blueprints pass
`annotate` as that port.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from service.metrics import observe_request
from service.security.log_format import RECORD_ATTRIBUTES, REQUEST_LOGGER

_FIELDS_KEY = "_lbp_log_fields"
_STARTED_KEY = "_lbp_request_started"
_LOGGED_KEY = "_lbp_request_logged"


def annotate(**fields: Any) -> None:
    """Add fields to this request's `lbp.request` line (later values win). A no-op outside a request,
    so core code may call it freely. Names that clash with LogRecord attributes get a trailing `_`."""
    if not has_request_context():
        return
    collected: dict[str, Any] = g.setdefault(_FIELDS_KEY, {})
    for name, value in fields.items():
        collected[f"{name}_" if name in RECORD_ATTRIBUTES else name] = value


def _route_path() -> str:
    """The route pattern (`/cds-services/<service_id>`); for unrouted paths only the first segment,
    since an arbitrary path could carry an identifier."""
    if request.url_rule is not None:
        return request.url_rule.rule
    first, _, rest = request.path.lstrip("/").partition("/")
    return f"/{first}/..." if rest else f"/{first}"


def _write_request_line(status: int) -> None:
    if g.get(_LOGGED_KEY):
        return
    g.setdefault(_LOGGED_KEY, True)
    started = g.get(_STARTED_KEY)
    client = g.get("cds_client")
    # Handlers' fields first, so none of them can overwrite what the request really was.
    fields: dict[str, Any] = {
        **g.get(_FIELDS_KEY, {}),
        "method": request.method,
        "path": _route_path(),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
    }
    if client is not None:
        fields["iss"] = client.iss
    logging.getLogger(REQUEST_LOGGER).info("request", extra=fields)
    observe_request(fields)  # the metrics count what the log line says, nothing more


def init_request_logging(app: Flask) -> None:
    """Write exactly one `lbp.request` line per request. Safe to call more than once."""
    if app.extensions.get("lbp-request-log"):
        return
    app.extensions["lbp-request-log"] = True

    def start_timer() -> None:
        g.setdefault(_STARTED_KEY, time.perf_counter())

    def log_response(response: Response) -> Response:
        _write_request_line(response.status_code)
        return response

    def log_unanswered(error: BaseException | None) -> None:
        # Reached without a response only when an exception escaped every handler.
        _write_request_line(500)

    # First before_request hook: the timer covers the auth guard and every other hook.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request(log_response)
    app.teardown_request(log_unanswered)
