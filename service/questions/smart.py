"""SMART App Launch (EHR launch, SMART App Launch 2.0) of the questions page, for EHRs that open a card's
`type: smart` link instead of a plain URL.

The card's link is `{base}/questions/smart/launch` with `appContext` = the assessment id. The EHR opens it
with `iss` (its FHIR base URL) and `launch`; `begin` checks `iss` against CDS_SMART_ISSUERS (nothing is
fetched from a URL the caller chose), reads `{iss}/.well-known/smart-configuration`, and sends the browser
to the EHR's authorization endpoint with PKCE (S256). The state, the code verifier and the token endpoint
travel in a signed, HttpOnly cookie named after the state (several launches in one browser do not clash),
so any replica can take the callback. `finish` checks the state against that cookie and exchanges the code;
the token response's `appContext` names the assessment and its `patient` must be the patient assessed.
The access token itself is not used, kept or logged: the launch only proves who opened which assessment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from service.config import ConfigError, Settings
from service.errors import ApiError
from service.fetch.trust import normalise_server_url, trusted_server
from service.questions.tokens import TokenSigner

CALLBACK_PATH = "/questions/smart/callback"
LAUNCH_PATH = "/questions/smart/launch"
COOKIE_PREFIX = "lbp_smart_"
LAUNCH_AUDIENCE = "lbp-imaging-cds:smart-launch"
LAUNCH_LIFETIME = timedelta(minutes=10)  # from the EHR's launch to the callback: one sign-in at most
HTTP_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 64 * 1024
CONFIGURATION_TTL_SECONDS = 3600.0
_STATE = re.compile(r"^[A-Za-z0-9_-]{32}$")
_OAUTH_ERROR = re.compile(r"^[a-z_]{1,64}$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class SmartEndpoints:
    authorize: str
    token: str


@dataclass(frozen=True, slots=True)
class LaunchRedirect:
    """Where to send the browser, and the cookie that must come back with the callback."""

    authorize_url: str
    cookie_name: str
    cookie_value: str


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What the EHR's token response says about this launch."""

    assessment_id: str  # the card's appContext
    patient_id: str | None  # the patient open in the EHR, when it says


def cookie_name(state: str) -> str:
    return f"{COOKIE_PREFIX}{state}"


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 4.2): base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _endpoint_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return "is missing"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS:
        return None  # local EHR simulators and tests
    return "must be an https URL"


def _with_query(url: str, parameters: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *parameters.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _upstream(code: str, message: str) -> ApiError:
    return ApiError(502, code, message, "iss")


def _json_from_ehr(method: str, url: str, *, code: str, failed: str, **options: Any) -> Any:
    """The EHR's 200 answer as JSON (at most MAX_RESPONSE_BYTES, no redirects followed), or a 502 `code`."""
    try:
        with requests.request(
            method,
            url,
            headers={"Accept": "application/json"},
            timeout=HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
            **options,
        ) as response:
            if response.status_code != 200:
                raise _upstream(code, f"{failed} (HTTP {response.status_code})")
            body = b""
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ValueError("response too large")
            return json.loads(body)
    except (requests.RequestException, ValueError):
        raise _upstream(code, failed) from None


class SmartLauncher:
    """The service as a SMART app: one per process, built at start-up from the settings."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        scope: str,
        issuers: tuple[str, ...],
        redirect_uri: str,
        signer: TokenSigner,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.issuers = issuers
        self.redirect_uri = redirect_uri
        self._signer = signer
        self._configurations: dict[str, tuple[float, SmartEndpoints]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, signer: TokenSigner) -> SmartLauncher | None:
        """None when SMART launch is off (no client id); ConfigError naming the variable when misset."""
        if settings.smart_client_id is None:
            if settings.smart_issuers:
                raise ConfigError(
                    "CDS_SMART_ISSUERS is set but CDS_SMART_CLIENT_ID is not: set both, or neither"
                )
            return None
        if not settings.smart_issuers:
            raise ConfigError(
                "CDS_SMART_CLIENT_ID is set but CDS_SMART_ISSUERS is not: name the EHR FHIR base URLs "
                "that may launch the questions page"
            )
        issuers = []
        for issuer in settings.smart_issuers:
            normalised = normalise_server_url(issuer)
            problem = "is not a URL" if normalised is None else _endpoint_problem(normalised)
            if normalised is None or problem:
                raise ConfigError(f"CDS_SMART_ISSUERS: {issuer!r} {problem} (plain http only for localhost)")
            issuers.append(normalised)
        if "launch" not in settings.smart_scope.split():
            raise ConfigError("CDS_SMART_SCOPE must include 'launch' (the EHR launch context)")
        return cls(
            client_id=settings.smart_client_id,
            client_secret=settings.smart_client_secret,
            scope=settings.smart_scope,
            issuers=tuple(issuers),
            redirect_uri=settings.public_base_urls[0] + CALLBACK_PATH,
            signer=signer,
        )

    def trusts(self, fhir_server: object) -> bool:
        """Whether a hook call from this FHIR server gets the `smart` questions link."""
        return trusted_server(fhir_server, self.issuers) is not None

    # -- the launch --------------------------------------------------------------------------------------

    def begin(self, iss: str | None, launch: str | None, *, now: datetime) -> LaunchRedirect:
        if not iss:
            raise ApiError(400, "smart-iss-missing", "the SMART launch needs the EHR's iss parameter", "iss")
        if not launch or len(launch) > 2048:
            raise ApiError(
                400, "smart-launch-missing", "the SMART launch needs its launch parameter", "launch"
            )
        issuer = trusted_server(iss, self.issuers)
        if issuer is None:
            raise ApiError(
                403,
                "smart-iss-not-trusted",
                "this EHR (iss) is not one this service may be launched from",
                "iss",
            )
        endpoints = self._endpoints(issuer)
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        sealed = self._signer.seal(
            {"state": state, "verifier": verifier, "iss": issuer, "token_endpoint": endpoints.token},
            audience=LAUNCH_AUDIENCE,
            now=now,
            lifetime=LAUNCH_LIFETIME,
        )
        authorize_url = _with_query(
            endpoints.authorize,
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "launch": launch,
                "scope": self.scope,
                "state": state,
                "aud": iss.strip(),  # as the EHR sent it: some compare `aud` with their iss exactly
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            },
        )
        return LaunchRedirect(authorize_url, cookie_name(state), sealed)

    def finish(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        cookies: Mapping[str, str],
        now: datetime,
    ) -> LaunchContext:
        """Check the callback against the launch's cookie and exchange the code for the launch context."""
        if not state or not _STATE.match(state):
            raise ApiError(
                400, "smart-state-missing", "the SMART callback has no valid state parameter", "state"
            )
        sealed = cookies.get(cookie_name(state))
        if not sealed:
            raise ApiError(
                400,
                "smart-state-unknown",
                "this browser did not start that SMART launch (no launch cookie): launch again from the EHR",
                "state",
            )
        launch = self._signer.unseal(
            sealed, audience=LAUNCH_AUDIENCE, required=("state", "verifier", "iss", "token_endpoint")
        )
        if launch is None or launch["state"] != state:
            raise ApiError(400, "smart-state-invalid", "the SMART launch's state does not match", "state")
        if now.timestamp() >= launch["exp"]:
            raise ApiError(
                400,
                "smart-launch-expired",
                "the SMART launch took too long: launch again from the EHR",
                "state",
            )
        if error:
            shown = error if _OAUTH_ERROR.match(error) else "unknown"
            raise ApiError(
                403, "smart-authorization-denied", f"the EHR did not authorize the launch ({shown})", "error"
            )
        if not code or len(code) > 4096:
            raise ApiError(400, "smart-code-missing", "the SMART callback has no authorization code", "code")
        return self._exchange(launch["token_endpoint"], code, launch["verifier"])

    # -- talking to the EHR ------------------------------------------------------------------------------

    def _endpoints(self, issuer: str) -> SmartEndpoints:
        with self._lock:
            cached = self._configurations.get(issuer)
        if cached and time.monotonic() - cached[0] < CONFIGURATION_TTL_SECONDS:
            return cached[1]
        endpoints = self._discover(issuer)
        with self._lock:
            self._configurations[issuer] = (time.monotonic(), endpoints)
        return endpoints

    def _discover(self, issuer: str) -> SmartEndpoints:
        document = _json_from_ehr(
            "GET",
            f"{issuer}/.well-known/smart-configuration",
            code="smart-configuration-unavailable",
            failed="the EHR's SMART configuration (.well-known/smart-configuration) could not be read",
        )
        if not isinstance(document, dict):
            raise _upstream(
                "smart-configuration-invalid", "the EHR's SMART configuration is not a JSON object"
            )
        for field in ("authorization_endpoint", "token_endpoint"):
            problem = _endpoint_problem(document.get(field))
            if problem:
                raise _upstream(
                    "smart-configuration-invalid", f"the EHR's SMART configuration: {field} {problem}"
                )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise _upstream(
                "smart-configuration-invalid", "the EHR's SMART configuration does not support PKCE S256"
            )
        return SmartEndpoints(document["authorization_endpoint"], document["token_endpoint"])

    def _exchange(self, token_endpoint: str, code: str, verifier: str) -> LaunchContext:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        auth = None
        if self._client_secret:
            auth = (self.client_id, self._client_secret)  # client_secret_basic
        else:
            form["client_id"] = self.client_id  # a public client names itself in the form
        answer = _json_from_ehr(
            "POST",
            token_endpoint,
            code="smart-token-exchange-failed",
            failed="the EHR refused to exchange the SMART authorization code",
            data=form,
            auth=auth,
        )
        if not isinstance(answer, dict):
            raise _upstream("smart-token-exchange-failed", "the EHR's token response is not a JSON object")
        app_context = answer.get("appContext")
        if not isinstance(app_context, str) or not app_context.strip():
            raise _upstream(
                "smart-app-context-missing",
                "the EHR's token response has no appContext: it must pass on the card link's appContext",
            )
        patient = answer.get("patient")
        return LaunchContext(
            assessment_id=app_context.strip(),
            patient_id=patient.removeprefix("Patient/") if isinstance(patient, str) and patient else None,
        )


__all__ = ["LaunchContext", "LaunchRedirect", "SmartLauncher", "code_challenge", "cookie_name"]
