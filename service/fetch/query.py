"""One prefetch query against a trusted FHIR server: a read or a search with its pages, on a time budget.

Everything that can go wrong ends as a short failure code (`http-401`, `timeout`, `too-large`...) with no
URL, body or token in it, so callers can log and report it without leaking patient data or credentials.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import requests
import urllib3
from requests.auth import AuthBase

from service.fetch.trust import Origin, origin_of, same_origin_url

ACCEPT_FHIR_JSON = {"Accept": "application/fhir+json"}
# Same-origin redirects are followed by hand (requests would follow any); a few hops is plenty.
MAX_REDIRECTS = 3
_CHUNK_BYTES = 64 * 1024


class BearerToken(AuthBase):
    """Adds `Authorization: Bearer ...` to one request; its repr never shows the token.

    Passing it as `auth=` also stops requests from reading ~/.netrc credentials for the host instead.
    """

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerToken(<redacted>)"


@dataclass(frozen=True, slots=True)
class QueryLimits:
    timeout_seconds: float  # per HTTP request, wall clock, body included
    max_pages: int
    max_bytes: int  # all pages of one query together
    max_resources: int


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """What one query produced: `value` on success, else `failure`; and what it cost."""

    value: dict[str, Any] | None = None
    failure: str | None = None
    truncated: str | None = None  # why a searchset stops early: page-limit, resource-limit...
    status: int | None = None  # the last HTTP status received
    pages: int = 0
    bytes: int = 0


class _Failed(Exception):
    """Ends a query with a failure code; never carries a URL, a body or a token."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class _Progress:
    pages: int = 0
    bytes: int = 0
    status: int | None = None


@dataclass(frozen=True, slots=True)
class QueryTarget:
    url: str  # absolute URL of the first page, on `origin`
    origin: Origin
    expected_type: str  # "Bundle" for a search, else the resource type read
    expected_id: str | None = None  # for a read: the id asked for, which the answer must carry


def target_for(base_url: str, filled_template: str) -> QueryTarget | None:
    """Where a filled prefetch template points on `base_url`, and what it must return."""
    origin = origin_of(base_url)
    if origin is None:
        return None
    relative = filled_template.lstrip("/")
    path = relative.split("?", 1)[0]
    url = f"{base_url}/{relative}"
    if "/" not in path:
        return QueryTarget(url, origin, "Bundle")
    resource_type, resource_id = path.split("/", 1)
    return QueryTarget(url, origin, resource_type, unquote(resource_id))


class QueryRunner:
    """Runs one query; owned by a single worker thread for its duration (the session is not shared)."""

    def __init__(
        self,
        session: requests.Session,
        limits: QueryLimits,
        deadline: float,
        stop_requested: Callable[[], bool],
    ) -> None:
        self._session = session
        self._limits = limits
        self._deadline = deadline  # time.monotonic() after which nobody waits for this query
        self._stop_requested = stop_requested  # true once the caller stopped waiting for this query
        self._progress = _Progress()

    def run(self, target: QueryTarget, auth: BearerToken) -> QueryOutcome:
        try:
            if target.expected_type == "Bundle":
                value, truncated = self._search(target, auth)
            else:
                value, truncated = self._fetch_json(target.url, target, auth), None
        except _Failed as failure:
            return self._outcome(failure=failure.code)
        return self._outcome(value=value, truncated=truncated)

    def _outcome(self, **fields: Any) -> QueryOutcome:
        progress = self._progress
        return QueryOutcome(status=progress.status, pages=progress.pages, bytes=progress.bytes, **fields)

    def _search(self, target: QueryTarget, auth: BearerToken) -> tuple[dict[str, Any], str | None]:
        url = target.url
        first = page = self._fetch_json(url, target, auth)
        seen = {url}
        entries: list[Any] = []
        truncated: str | None = None
        while True:
            if page.get("type") not in (None, "searchset"):  # some servers leave `type` out
                raise _Failed("unexpected-bundle-type")
            page_entries = page.get("entry") or []
            if not isinstance(page_entries, list):
                raise _Failed("invalid-bundle")
            entries.extend(page_entries)
            if len(entries) > self._limits.max_resources:
                del entries[self._limits.max_resources :]
                truncated = "resource-limit"
                break
            next_url = _next_link(page)
            if next_url is None:
                break
            next_url = same_origin_url(url, next_url, target.origin)
            if next_url is None:
                truncated = "next-link-other-origin"
                break
            if next_url in seen:
                break  # a server that links a page to itself has nothing more to give
            if self._progress.pages >= self._limits.max_pages:
                truncated = "page-limit"
                break
            seen.add(next_url)
            url = next_url
            page = self._fetch_json(url, target, auth)
        merged: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if isinstance(first.get("total"), int):
            merged["total"] = first["total"]
        return merged, truncated

    def _fetch_json(self, url: str, target: QueryTarget, auth: BearerToken) -> dict[str, Any]:
        body = self._get(url, target.origin, auth)
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and bad JSON
            raise _Failed("invalid-json") from None
        if not isinstance(parsed, dict):
            raise _Failed("invalid-json")
        resource_type = parsed.get("resourceType")
        if resource_type == "OperationOutcome":
            raise _Failed("operation-outcome")
        if resource_type != target.expected_type:
            raise _Failed("unexpected-resource-type")
        if target.expected_id is not None and parsed.get("id") != target.expected_id:
            raise _Failed("unexpected-resource-id")  # another record than the one asked for: never use it
        return parsed

    def _get(self, url: str, origin: Origin, auth: BearerToken) -> bytes:
        """The body of a 200 answer to GET `url`, following same-origin redirects only."""
        for _hop in range(MAX_REDIRECTS + 1):
            request_deadline = min(self._deadline, time.monotonic() + self._limits.timeout_seconds)
            self._check_time(request_deadline)
            try:
                with self._session.get(
                    url,
                    headers=ACCEPT_FHIR_JSON,
                    auth=auth,
                    timeout=max(request_deadline - time.monotonic(), 0.001),
                    allow_redirects=False,
                    stream=True,
                ) as response:
                    self._progress.status = response.status_code
                    if response.is_redirect:
                        location = same_origin_url(url, response.headers["location"], origin)
                        if location is None:
                            raise _Failed("redirect-refused")
                        url = location
                        continue
                    if response.status_code != 200:
                        raise _Failed(f"http-{response.status_code}")
                    body = self._read_body(response, request_deadline)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise _Failed(self._transport_failure(error)) from None
            self._progress.pages += 1
            return body
        raise _Failed("too-many-redirects")

    def _read_body(self, response: requests.Response, request_deadline: float) -> bytes:
        budget = self._limits.max_bytes - self._progress.bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > budget:
            raise _Failed("too-large")
        body = bytearray()
        # Streamed so that an oversized or endless body is cut off at the budget, never held whole; read1
        # returns after a single socket read, so a server trickling bytes still meets the wall clock.
        while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
            body += chunk
            self._progress.bytes += len(chunk)
            if len(body) > budget:
                raise _Failed("too-large")
            self._check_time(request_deadline)
        return bytes(body)

    def _transport_failure(self, error: Exception) -> str:
        if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError):
            return "deadline" if time.monotonic() >= self._deadline else "timeout"
        if isinstance(error, requests.exceptions.SSLError):
            return "tls-error"
        if isinstance(error, urllib3.exceptions.DecodeError):
            return "invalid-content-encoding"
        return "connection-failed"

    def _check_time(self, request_deadline: float) -> None:
        now = time.monotonic()
        if self._stop_requested() or now >= self._deadline:
            raise _Failed("deadline")
        if now >= request_deadline:
            raise _Failed("timeout")


def _next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            url: str = link["url"]
            return url
    return None
