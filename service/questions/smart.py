"""SMART App Launch (EHR launch, SMART App Launch 2.0) of the questions page, for EHRs that open a card's
`type: smart` link instead of a plain URL.

The card's link is `{base}/questions/smart/launch` with `appContext` = the assessment id. The EHR opens it
with `iss` (its FHIR base URL) and `launch`; `begin` checks `iss` against CDS_SMART_ISSUERS (nothing is
fetched from a URL the caller chose), reads `{iss}/.well-known/smart-configuration`, and sends the browser
to the EHR's authorization endpoint with PKCE (S256). The state, the code verifier and the token endpoint
travel in a signed, HttpOnly cookie named after the state (several launches in one browser do not clash),
so any replica can take the callback. `finish` checks the state against that cookie (and the response's
`iss`, RFC 9207, when the EHR says it sends one) and exchanges the code; the token response's `appContext`
names the assessment, which must have been offered to this EHR, and its `patient` must be the patient
assessed. The access token itself is not used, kept or logged: the launch proves which EHR opened which
assessment for which patient, not who the user is (no `openid`; the EHR authenticated its user).
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
FAILURE_TTL_SECONDS = 30.0  # an EHR that is down is asked again after this, not on every launch
_STATE = re.compile(r"[A-Za-z0-9_-]{32}")
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")
_ASSESSMENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class SmartEndpoints:
    authorize: str
    token: str
    response_issuer: str | None  # the `iss` the callback must carry (RFC 9207), when the EHR sends one


@dataclass(frozen=True, slots=True)
class LaunchRedirect:
    """Where to send the browser, and the cookie that must come back with the callback."""

    authorize_url: str
    cookie_name: str
    cookie_value: str


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What the EHR's token response says about this launch."""

    ehr: str  # the launch's issuer (normalised FHIR base URL)
    assessment_id: str  # the card's appContext
    patient_id: str | None  # the patient open in the EHR, when it says


def cookie_name(state: str) -> str:
    return f"{COOKIE_PREFIX}{state}"


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 4.2): base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_loopback(url: str) -> bool:
    try:
        return (urlsplit(url).hostname or "").lower() in _LOOPBACK_HOSTS
    except ValueError:
        return False


def _endpoint_problem(url: Any, *, loopback_http: bool) -> str | None:
    if not isinstance(url, str):
        return "is missing"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS and loopback_http:
        return None  # a local EHR simulator (and tests): only for an issuer on loopback itself
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
    except (requests.RequestException, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
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
        self._configurations: dict[str, tuple[float, SmartEndpoints | ApiError]] = {}
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
            problem = (
                "is not a URL" if normalised is None else _endpoint_problem(normalised, loopback_http=True)
            )
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

    def issuer_for(self, fhir_server: object) -> str | None:
        """The configured issuer a hook call's `fhirServer` is (its card gets the `smart` link), or None."""
        return trusted_server(fhir_server, self.issuers)

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
        claims = {"state": state, "verifier": verifier, "ehr": issuer, "token_endpoint": endpoints.token}
        if endpoints.response_issuer:
            claims["response_iss"] = endpoints.response_issuer
        sealed = self._signer.seal(
            claims,
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
        response_iss: str | None,
        cookies: Mapping[str, str],
        now: datetime,
    ) -> LaunchContext:
        """Check the callback against the launch's cookie and exchange the code for the launch context."""
        if not state or not _STATE.fullmatch(state):
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
            sealed, audience=LAUNCH_AUDIENCE, required=("state", "verifier", "ehr", "token_endpoint")
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
        expected_iss = launch.get("response_iss")
        if expected_iss is not None and response_iss != expected_iss:
            # RFC 9207: an EHR that names itself in its responses must, or the response is another's.
            raise ApiError(
                400, "smart-response-iss-mismatch", "the SMART callback's iss is not the EHR launched", "iss"
            )
        if error:
            shown = error if _OAUTH_ERROR.fullmatch(error) else "unknown"
            raise ApiError(
                403, "smart-authorization-denied", f"the EHR did not authorize the launch ({shown})", "error"
            )
        if not code or len(code) > 4096:
            raise ApiError(400, "smart-code-missing", "the SMART callback has no authorization code", "code")
        return self._exchange(launch["ehr"], launch["token_endpoint"], code, launch["verifier"])

    # -- talking to the EHR ------------------------------------------------------------------------------

    def _endpoints(self, issuer: str) -> SmartEndpoints:
        with self._lock:
            cached = self._configurations.get(issuer)
        if cached:
            fetched_at, known = cached
            ttl = FAILURE_TTL_SECONDS if isinstance(known, ApiError) else CONFIGURATION_TTL_SECONDS
            if time.monotonic() - fetched_at < ttl:
                if isinstance(known, ApiError):
                    raise known
                return known
        try:
            endpoints = self._discover(issuer)
        except ApiError as failure:
            with self._lock:
                self._configurations[issuer] = (time.monotonic(), failure)
            raise
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
            problem = _endpoint_problem(document.get(field), loopback_http=_is_loopback(issuer))
            if problem:
                raise _upstream(
                    "smart-configuration-invalid", f"the EHR's SMART configuration: {field} {problem}"
                )
        methods = document.get("code_challenge_methods_supported")
        if not isinstance(methods, list) or "S256" not in methods:  # SMART 2.0: SHALL list S256
            raise _upstream(
                "smart-configuration-invalid",
                "the EHR's SMART configuration does not list PKCE S256 in code_challenge_methods_supported",
            )
        response_issuer = None
        if document.get("authorization_response_iss_parameter_supported") is True:
            if not isinstance(document.get("issuer"), str):
                raise _upstream(
                    "smart-configuration-invalid", "the EHR's SMART configuration: issuer is missing"
                )
            response_issuer = document["issuer"]
        return SmartEndpoints(document["authorization_endpoint"], document["token_endpoint"], response_issuer)

    def _exchange(self, ehr: str, token_endpoint: str, code: str, verifier: str) -> LaunchContext:
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
        if not _ASSESSMENT_ID.fullmatch(app_context.strip()):
            raise _upstream(
                "smart-app-context-invalid", "the EHR's appContext is not an assessment id this service gave"
            )
        patient = answer.get("patient")
        return LaunchContext(
            ehr=ehr,
            assessment_id=app_context.strip(),
            patient_id=patient.removeprefix("Patient/") if isinstance(patient, str) and patient else None,
        )


__all__ = ["LaunchContext", "LaunchRedirect", "SmartLauncher", "code_challenge", "cookie_name"]
