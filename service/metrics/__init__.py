"""Prometheus metrics for operations: requests, hook answers, feedback, FHIR fetches, JWT refusals, audit
writes. Labels are route patterns, codes and classes from closed sets, never a patient, clinician, token or
free text. Under gunicorn the counts of every worker add up (prometheus-client's multiprocess mode: the
directory in PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

REQUESTS = Counter("lbp_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "lbp_http_request_duration_seconds", "Time to answer, by route", ["route"], buckets=_LATENCY_BUCKETS
)
HOOK_ANSWERS = Counter(
    "lbp_hook_orders_judged_total",
    "Lumbar imaging orders judged, by service, appropriateness, card indicator and urgency",
    ["service", "appropriateness", "indicator", "urgent"],
)
HOOK_OUTCOMES = Counter(
    "lbp_hook_calls_total", "Hook and /evaluate calls, by outcome", ["service", "outcome"]
)
FEEDBACK = Counter(
    "lbp_feedback_items_total",
    "CDS Hooks feedback items, by outcome and override reason",
    ["outcome", "reason"],
)
FHIR_FETCH_SECONDS = Histogram(
    "lbp_fhir_fetch_duration_seconds",
    "Time spent fetching what prefetch lacked, per hook call that fetched",
    buckets=_LATENCY_BUCKETS,
)
FHIR_FETCH_OUTCOMES = Counter(
    "lbp_fhir_fetch_total", "Prefetch keys fetched from the EHR's FHIR server, by outcome", ["key", "outcome"]
)
AUTH_REFUSALS = Counter("lbp_auth_refusals_total", "Refused credentials, by reason class", ["reason"])
STORE_WRITE_SECONDS = Histogram(
    "lbp_audit_store_write_duration_seconds", "Audit-store write time", buckets=_LATENCY_BUCKETS
)
STORE_WRITE_FAILURES = Counter("lbp_audit_store_write_failures_total", "Audit-store writes that failed")

# JWT and admin-token refusal reasons (free text, for the log) -> a class from a closed set.
_AUTH_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("admin-token", r"^admin token"),
        ("missing", r"^no Authorization|not 'Bearer"),
        ("replay", r"replay"),
        ("expired", r"expired|not yet valid|in the future|exp is|nbf"),
        ("audience", r"^aud "),
        ("unknown-issuer", r"^iss .* not an allowed client"),
        ("unknown-key", r"^kid |^key |^header has no kid|^jku "),
        ("jwks-unavailable", r"could not be fetched"),
        ("signature", r"signature"),
        ("algorithm", r"^alg |^typ "),
        ("malformed", r"well-formed|longer than|NumericDate|^claim |^jti |^tenant"),
    )
)
_FETCH_OUTCOME = re.compile(r"^[a-z0-9-]{1,64}$")


def auth_class(reason: str) -> str:
    return next((name for name, pattern in _AUTH_CLASSES if pattern.search(reason)), "other")


def observe_request(fields: Mapping[str, Any]) -> None:
    """One answered request, from its `lbp.request` log fields (codes only; see service/http/request_log)."""
    route, status = str(fields.get("path")), str(fields.get("status"))
    REQUESTS.labels(route=route, method=str(fields.get("method")), status=status).inc()
    if isinstance(fields.get("duration_ms"), int | float):
        REQUEST_SECONDS.labels(route=route).observe(fields["duration_ms"] / 1000)
    service = fields.get("service")
    if isinstance(service, str) and isinstance(fields.get("outcome"), str):
        HOOK_OUTCOMES.labels(service=service, outcome=fields["outcome"]).inc()
        urgent = "true" if fields.get("urgent") else "false"
        for appropriateness, indicator in zip(
            fields.get("appropriateness") or (), fields.get("indicators") or (), strict=False
        ):
            HOOK_ANSWERS.labels(
                service=service, appropriateness=appropriateness, indicator=indicator, urgent=urgent
            ).inc()
    if isinstance(fields.get("fetch_ms"), int | float) and (
        fields.get("fetched") or fields.get("fetch_missing")
    ):
        FHIR_FETCH_SECONDS.observe(fields["fetch_ms"] / 1000)
    for key in fields.get("fetched") or ():
        FHIR_FETCH_OUTCOMES.labels(key=str(key), outcome="fetched").inc()
    for key, reason in (fields.get("fetch_missing") or {}).items():
        outcome = reason if _FETCH_OUTCOME.match(str(reason)) else "other"
        FHIR_FETCH_OUTCOMES.labels(key=str(key), outcome=outcome).inc()
    if isinstance(fields.get("auth_failure"), str):
        AUTH_REFUSALS.labels(reason=auth_class(fields["auth_failure"])).inc()


def observe_feedback(items: Iterable[tuple[str, str | None]], known_reasons: Iterable[str]) -> None:
    """Feedback (outcome, override reason code); a code outside the rules' override reasons is `other`."""
    known = set(known_reasons)
    for outcome, reason in items:
        label = "none" if reason is None else reason if reason in known else "other"
        FEEDBACK.labels(outcome=outcome, reason=label).inc()


def observe_store_write(seconds: float, *, failed: bool) -> None:
    STORE_WRITE_SECONDS.observe(seconds)
    if failed:
        STORE_WRITE_FAILURES.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format: every worker's under gunicorn, this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
