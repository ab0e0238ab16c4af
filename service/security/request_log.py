"""Structured logs without PHI: JSON lines, one `lbp.request` line per request, and redaction safeguards.

What a line may hold is decided here, not by each caller: the route pattern (never the query string),
status, duration, the caller's `iss`, and fields handlers add with `annotate(...)` (hookInstance, service,
rule ids, outcome...). Request bodies, JWTs, FHIR access tokens and patient data are never logged; as a
second line of defence the formatter blanks secret-named fields, masks anything shaped like a JWT or a
bearer credential, and formats exceptions as type and code location only (their text may quote data).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from service.config import ConfigError

REQUEST_LOGGER = "lbp.request"
REDACTED = "[redacted]"
# Field names that suggest a credential: their values are never written.
_SECRET_NAME = re.compile(
    r"token|authori[sz]ation|password|passwd|secret|cookie|credential|jwt|api_?key", re.IGNORECASE
)
# Values shaped like a compact JWS/JWT or a bearer credential, wherever they turn up.
_SECRET_VALUE = re.compile(r"eyJ[\w-]{4,}\.[\w-]+\.[\w-]*|(?i:bearer)\s+\S+")
# Attributes every LogRecord has; anything else on a record came from `extra=` and becomes a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_FIELDS_KEY = "_lbp_log_fields"
_STARTED_KEY = "_lbp_request_started"
_LOGGED_KEY = "_lbp_request_logged"
_MAX_FRAMES = 12
# Library loggers that write URLs with query strings (werkzeug's access lines, urllib3's FHIR fetches:
# `?patient=<id>`) or SQL with its parameters (SQLAlchemy): kept at WARNING whatever LOG_LEVEL says.
_CHATTY_LOGGERS = ("werkzeug", "flask_cors", "urllib3", "requests", "sqlalchemy")


def _mask(value: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, value)


def _clean(name: str, value: Any) -> Any:
    """`value` as it may be logged under `name`: secrets blanked, nested containers cleaned too."""
    if _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, Mapping):
        return {str(key): _clean(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(name, item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _mask(str(value))


def _exception_fields(exc_info: Any) -> dict[str, Any]:
    """The exception's type and where it happened; never its text, which may quote request data."""
    error_type, _, trace = exc_info
    frames = traceback.extract_tb(trace)[-_MAX_FRAMES:]
    return {
        "exc_type": getattr(error_type, "__qualname__", str(error_type)),
        "exc_where": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
    }


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = _clean(name, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry.update(_exception_fields(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
    return number


class _JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it instead of doubling."""


def configure_logging(level: str | int = "INFO") -> None:
    """Send every log record to stderr as JSON lines (replacing any handler a previous call installed)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonLinesHandler)]:
        root.removeHandler(handler)
    handler = _JsonLinesHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    root.addHandler(handler)
    root.setLevel(_level_number(level))
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def annotate(**fields: Any) -> None:
    """Add fields to this request's `lbp.request` line (later values win). A no-op outside a request,
    so core code may call it freely. Names that clash with LogRecord attributes get a trailing `_`."""
    if not has_request_context():
        return
    collected: dict[str, Any] = g.setdefault(_FIELDS_KEY, {})
    for name, value in fields.items():
        collected[f"{name}_" if name in _RECORD_ATTRIBUTES else name] = value


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
