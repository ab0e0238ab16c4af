"""Gather the prefetch data a hook needs: take what the client sent, fetch the rest from its FHIR server.

Prefetch semantics (CDS Hooks 2.0.1, "Prefetch"): a key sent as `null` means the client has no data and is
not queried again; a key whose value is an OperationOutcome is a failed prefetch and is queried once more
when fetching is possible; a key left out is fetched. Fetching needs `fhirServer` on the authenticated
client's allowlist and `fhirAuthorization` with an `access_token`; the queries then run in parallel under
one deadline, and whatever has not answered by then is abandoned and reported missing.

One `requests.Session` per worker thread: requests' maintainers advise "one session per thread"
(psf/requests#1871, #2766) as a Session is not documented thread-safe; each still reuses its connections.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from service.config import Settings
from service.fetch.query import BearerToken, QueryLimits, QueryOutcome, QueryRunner, QueryTarget, target_for
from service.fetch.templates import fill_template
from service.fetch.trust import trusted_server

logger = logging.getLogger("lbp.fetch")

# Visible ASCII only: a token with spaces or line breaks is malformed, and must never reach a header.
_TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")
# Enough for several hook calls at once per process (7 prefetch keys each); more calls wait their turn.
DEFAULT_MAX_WORKERS = 32
_DEFAULTS = Settings()


@dataclass(frozen=True, slots=True)
class GatherResult:
    """The prefetch values a hook can use, and an account of the ones it cannot.

    `values`: key -> the resource or searchset Bundle (pages merged), or None when the client said it has
    no data. `missing`: key -> short reason, free of PHI ("not-prefetched-and-no-fhirServer", "http-401",
    "deadline"...). `truncated`: key -> why a fetched searchset holds only part of the results
    ("page-limit", "resource-limit", "next-link-other-origin"): absent findings there are not proof.
    `fetched`: keys whose value came from the FHIR server. `timings_ms`: key -> time spent fetching it.
    """

    values: dict[str, Any]
    missing: dict[str, str]
    fetched: tuple[str, ...] = ()
    truncated: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class _Access:
    base_url: str
    auth: BearerToken


@dataclass(slots=True)
class _KeyLog:
    source: str  # prefetch | fetched | missing
    outcome: str = "ok"
    ms: float | None = None
    status: int | None = None
    pages: int | None = None
    bytes: int | None = None

    def as_log(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}


@dataclass(slots=True)
class _Gathering:
    """What one `gather` call has found so far."""

    started: float
    values: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    truncated: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    key_logs: dict[str, _KeyLog] = field(default_factory=dict)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def supplied(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.key_logs[key] = _KeyLog("prefetch", "ok" if value is not None else "null")

    def fail(self, key: str, reason: str) -> None:
        self.missing[key] = reason
        self.key_logs[key] = _KeyLog("missing", reason)

    def fetched_outcome(self, key: str, outcome: QueryOutcome, elapsed_ms: float) -> None:
        self.timings_ms[key] = round(elapsed_ms, 1)
        if outcome.value is None:
            self.fail(key, outcome.failure or "failed")
        else:
            self.values[key] = outcome.value
            self.fetched.append(key)
            if outcome.truncated:
                self.truncated[key] = outcome.truncated
        self.key_logs[key] = _KeyLog(
            "fetched" if outcome.value is not None else "missing",
            self.missing.get(key) or (f"truncated:{outcome.truncated}" if outcome.truncated else "ok"),
            ms=self.timings_ms[key],
            status=outcome.status,
            pages=outcome.pages,
            bytes=outcome.bytes,
        )

    def result(self) -> GatherResult:
        return GatherResult(
            values=self.values,
            missing=self.missing,
            fetched=tuple(self.fetched),
            truncated=self.truncated,
            timings_ms=self.timings_ms,
            elapsed_ms=round(self.elapsed_ms(), 1),
        )


class PrefetchGatherer:
    """Built once at start-up; `gather` is safe to call from many request threads at once."""

    def __init__(
        self,
        *,
        deadline_seconds: float,
        query_timeout_seconds: float,
        max_pages: int,
        max_response_bytes: int,
        max_resources: int = _DEFAULTS.max_resources,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self._deadline_seconds = deadline_seconds
        self._limits = QueryLimits(
            timeout_seconds=query_timeout_seconds,
            max_pages=max_pages,
            max_bytes=max_response_bytes,
            max_resources=max_resources,
        )
        self._thread_state = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._closed = threading.Event()
        # Threads start on first use, so building this before gunicorn forks its workers is safe.
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="lbp-fetch", initializer=self._open_session
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, max_workers: int = DEFAULT_MAX_WORKERS) -> PrefetchGatherer:
        return cls(
            deadline_seconds=settings.fetch_deadline_seconds,
            query_timeout_seconds=settings.fetch_query_timeout_seconds,
            max_pages=settings.fetch_max_pages,
            max_response_bytes=settings.fetch_max_response_bytes,
            max_resources=settings.max_resources,
            max_workers=max_workers,
        )

    def __enter__(self) -> PrefetchGatherer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (queries under way are abandoned) and close their connections."""
        self._closed.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def gather(
        self,
        *,
        templates: Mapping[str, str],
        prefetch: Mapping[str, Any],
        context: Mapping[str, Any],
        fhir_server: str | None,
        fhir_authorization: Mapping[str, Any] | None,
        allowed_servers: Collection[str],
        hook_instance: str | None = None,
    ) -> GatherResult:
        """The value of every key in `templates`, from `prefetch` or fetched, or the reason it is missing.

        Returns by the deadline whatever the FHIR server does. `hook_instance` only tags the log line.
        """
        if self._closed.is_set():
            raise RuntimeError("PrefetchGatherer is closed")
        gathering = _Gathering(started=time.monotonic())
        wanted: dict[str, str] = {}  # key -> why it must be fetched
        for key in templates:
            if key in prefetch and _usable_prefetch(prefetch[key]):
                gathering.supplied(key, prefetch[key])
            else:
                wanted[key] = "prefetch-failed" if key in prefetch else "not-prefetched"
        access = _access(fhir_server, fhir_authorization, allowed_servers) if wanted else None
        if isinstance(access, str):
            for key, why in wanted.items():
                gathering.fail(key, access if access == "untrusted-fhirServer" else f"{why}-and-{access}")
        elif access is not None:
            self._fetch(gathering, {key: templates[key] for key in wanted}, context, access)
        result = gathering.result()
        _log_gather(result, gathering.key_logs, access, hook_instance)
        return result

    def _fetch(
        self, gathering: _Gathering, templates: Mapping[str, str], context: Mapping[str, Any], access: _Access
    ) -> None:
        deadline = gathering.started + self._deadline_seconds
        abandoned = threading.Event()

        def stop_requested() -> bool:
            return abandoned.is_set() or self._closed.is_set()

        futures: dict[str, Future[tuple[QueryOutcome, float]]] = {}
        for key, template in templates.items():
            filled = fill_template(template, context)
            target = None if filled is None else target_for(access.base_url, filled)
            if target is None:
                gathering.fail(key, "template-not-fillable")
                continue
            futures[key] = self._executor.submit(self._run, target, access.auth, deadline, stop_requested)
        try:
            wait(futures.values(), timeout=max(deadline - time.monotonic(), 0))
        finally:
            abandoned.set()  # whatever still runs is no longer awaited: it stops at its next check
        for key, future in futures.items():
            if future.done() and not future.cancelled():
                outcome, elapsed_ms = future.result()
            else:
                future.cancel()
                outcome, elapsed_ms = QueryOutcome(failure="deadline"), gathering.elapsed_ms()
            gathering.fetched_outcome(key, outcome, elapsed_ms)

    def _run(
        self, target: QueryTarget, auth: BearerToken, deadline: float, stop_requested: Callable[[], bool]
    ) -> tuple[QueryOutcome, float]:
        started = time.monotonic()
        runner = QueryRunner(self._thread_state.session, self._limits, deadline, stop_requested)
        try:
            outcome = runner.run(target, auth)
        except Exception as error:
            # A bug here must not fail the whole hook: the key is reported missing (so the card says what
            # could not be checked) and the error type is logged. Its message could hold a URL: left out.
            logger.error("prefetch query failed unexpectedly: %s", type(error).__name__)
            outcome = QueryOutcome(failure="internal-error")
        return outcome, (time.monotonic() - started) * 1000

    def _open_session(self) -> None:
        """Worker-thread initializer: this thread's own Session, with no cookie jar and no retries."""
        session = requests.Session()
        # Cookies set by one EHR answer must never ride along with another patient's query.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=1, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._thread_state.session = session
        with self._sessions_lock:
            self._sessions.append(session)


def _usable_prefetch(value: Any) -> bool:
    """A prefetched value to use as sent: null (no data) or a resource other than an OperationOutcome."""
    if value is None:
        return True
    return (
        isinstance(value, dict)
        and isinstance(value.get("resourceType"), str)
        and (value["resourceType"] != "OperationOutcome")
    )


def _access(
    fhir_server: str | None, fhir_authorization: Mapping[str, Any] | None, allowed_servers: Collection[str]
) -> _Access | str:
    """Where and how to fetch, or why nothing may be fetched."""
    if not fhir_server:
        return "no-fhirServer"
    base_url = trusted_server(fhir_server, allowed_servers)
    if base_url is None:
        return "untrusted-fhirServer"
    if not isinstance(fhir_authorization, Mapping):
        return "no-fhirAuthorization"
    token = fhir_authorization.get("access_token")
    if not isinstance(token, str) or not token:
        return "no-access-token"
    if not _TOKEN_CHARACTERS.fullmatch(token):
        return "malformed-access-token"
    token_type = fhir_authorization.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        return "unsupported-token-type"
    return _Access(base_url, BearerToken(token))


def _log_gather(
    result: GatherResult,
    key_logs: Mapping[str, _KeyLog],
    access: _Access | str | None,
    hook_instance: str | None,
) -> None:
    """One line per gather: per-key source, outcome, timing, pages and bytes. No URL, id or token."""
    fetch: dict[str, Any] = {
        "elapsed_ms": result.elapsed_ms,
        "fetched": len(result.fetched),
        "missing": len(result.missing),
        "keys": {key: log.as_log() for key, log in key_logs.items()},
    }
    if isinstance(access, _Access):
        base = urlsplit(access.base_url)
        fetch["fhir_origin"] = f"{base.scheme}://{base.netloc}"  # the EHR, never a query with a patient id
    extra: dict[str, Any] = {"fetch": fetch}
    if hook_instance is not None:
        extra["hookInstance"] = hook_instance
    logger.info(
        "prefetch gathered in %.1f ms: %d fetched, %d missing",
        result.elapsed_ms,
        len(result.fetched),
        len(result.missing),
        extra=extra,
    )
