"""Settings from the environment (documented in README.md), with a test override."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal


class ConfigError(ValueError):
    """A setting has a value the service cannot run with; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    port: int = 8080
    # External base URL(s) of this service; JWT `aud` must equal one of these + the endpoint path.
    public_base_urls: tuple[str, ...] = ("http://localhost:8080",)
    auth: Literal["required", "disabled"] = "required"
    clients_file: str | None = None
    database_url: str = "sqlite:///var/lbp-imaging-cds.db"
    admin_token: str | None = None
    metrics_token: str | None = None  # GET /metrics; the admin token also works; off when neither is set
    patient_hash_key: str | None = None
    retention_days: int = 2190  # six years: HIPAA documentation retention, 45 CFR 164.316(b)(2)
    max_body_bytes: int = 5 * 1024 * 1024
    max_resources: int = 5000  # per prefetch value or Bundle
    max_json_depth: int = 64
    # A client that sends less body than its Content-Length would hold a request thread: give up after this.
    body_read_timeout_seconds: float = 10.0
    cors_origins: tuple[str, ...] = ("*",)
    fetch_deadline_seconds: float = 2.0
    fetch_query_timeout_seconds: float = 1.5
    fetch_max_pages: int = 5
    fetch_max_response_bytes: int = 10 * 1024 * 1024
    jwt_leeway_seconds: int = 60
    jwks_fetch_timeout_seconds: float = 3.0
    quiet_when_appropriate: bool = False
    log_level: str = "INFO"
    # The order-entry demo page (/demo): only with auth disabled, never with real patients.
    demo: bool = False
    demo_fhir_server: str | None = None  # the page's "EHR" FHIR server; None: the sample patients
    demo_patients_folder: str | None = None  # None: examples/patients
    # Red-flag questions: the card links to /questions/{assessmentId} when the record left flags unchecked.
    questions: bool = True
    questions_key: str | None = None  # signs the link's token; shared by every replica (>= 32 bytes)
    questions_link_minutes: int = 30
    # SMART app launch of the questions page: on for EHRs whose FHIR base URL is in `smart_issuers`.
    smart_client_id: str | None = None  # this app's client id, registered with the EHR
    smart_client_secret: str | None = None  # only for a confidential client (client_secret_basic)
    smart_issuers: tuple[str, ...] = ()  # the `iss` (FHIR base URLs) a launch may come from
    smart_scope: str = "launch"


# Environment variable -> Settings field.
ENVIRONMENT: Mapping[str, str] = {
    "PORT": "port",
    "CDS_PUBLIC_BASE_URL": "public_base_urls",
    "CDS_AUTH": "auth",
    "CDS_CLIENTS_FILE": "clients_file",
    "DATABASE_URL": "database_url",
    "CDS_ADMIN_TOKEN": "admin_token",
    "CDS_METRICS_TOKEN": "metrics_token",
    "CDS_PATIENT_HASH_KEY": "patient_hash_key",
    "CDS_RETENTION_DAYS": "retention_days",
    "CDS_MAX_BODY_BYTES": "max_body_bytes",
    "CDS_MAX_RESOURCES": "max_resources",
    "CDS_MAX_JSON_DEPTH": "max_json_depth",
    "CDS_BODY_READ_TIMEOUT_SECONDS": "body_read_timeout_seconds",
    "CDS_CORS_ORIGINS": "cors_origins",
    "CDS_FETCH_DEADLINE_SECONDS": "fetch_deadline_seconds",
    "CDS_FETCH_QUERY_TIMEOUT_SECONDS": "fetch_query_timeout_seconds",
    "CDS_FETCH_MAX_PAGES": "fetch_max_pages",
    "CDS_FETCH_MAX_RESPONSE_BYTES": "fetch_max_response_bytes",
    "CDS_JWT_LEEWAY_SECONDS": "jwt_leeway_seconds",
    "CDS_JWKS_FETCH_TIMEOUT_SECONDS": "jwks_fetch_timeout_seconds",
    "CDS_QUIET_WHEN_APPROPRIATE": "quiet_when_appropriate",
    "CDS_DEMO": "demo",
    "CDS_DEMO_FHIR_SERVER": "demo_fhir_server",
    "CDS_DEMO_PATIENTS": "demo_patients_folder",
    "CDS_QUESTIONS": "questions",
    "CDS_QUESTIONS_KEY": "questions_key",
    "CDS_QUESTIONS_LINK_MINUTES": "questions_link_minutes",
    "CDS_SMART_CLIENT_ID": "smart_client_id",
    "CDS_SMART_CLIENT_SECRET": "smart_client_secret",
    "CDS_SMART_ISSUERS": "smart_issuers",
    "CDS_SMART_SCOPE": "smart_scope",
    "LOG_LEVEL": "log_level",
}
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(variable: str, name: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw  # a test override already has the right type
    kind = _FIELD_TYPES[name]
    value = raw.strip()
    try:
        if kind == "int":
            number = int(value)
            if number <= 0:
                raise ValueError
            return number
        if kind == "float":
            seconds = float(value)
            if seconds <= 0:
                raise ValueError
            return seconds
    except ValueError:
        raise ConfigError(f"{variable} must be a positive number, got {value!r}") from None
    if kind == "bool":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{variable} must be true or false, got {value!r}")
    if kind == "tuple[str, ...]":
        items = tuple(
            item.strip().rstrip("/") if name == "public_base_urls" else item.strip()
            for item in value.replace(",", " ").split()
        )
        if not items:
            raise ConfigError(f"{variable} must name at least one value")
        return items
    if name == "auth":
        if value not in ("required", "disabled"):
            raise ConfigError(f"{variable} must be 'required' or 'disabled', got {value!r}")
        return value
    return value or None if kind == "str | None" else value


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from `environ` (default: the process environment), then `overrides` (field names)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for variable, name in ENVIRONMENT.items():
        if variable in environ:
            values[name] = _convert(variable, name, environ[variable])
    settings = Settings(**values)
    if "public_base_urls" not in values and "port" in values:
        settings = replace(settings, public_base_urls=(f"http://localhost:{settings.port}",))
    if overrides:
        unknown = set(overrides) - set(_FIELD_TYPES)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = replace(
            settings, **{name: _convert(name, name, value) for name, value in overrides.items()}
        )
    return settings
