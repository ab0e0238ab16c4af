"""Structured logs without PHI: JSON lines and redaction safeguards (the per-request line is written by
`service.http.request_log`).

Request bodies, JWTs, FHIR access tokens and patient data are never logged; as a second line of defence
the formatter blanks secret-named fields, masks anything shaped like a JWT or a bearer credential, and
formats exceptions as type and code location only (their text may quote data).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
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
            if name not in RECORD_ATTRIBUTES and not name.startswith("_"):
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
