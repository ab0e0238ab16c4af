"""A small real SMART App Launch authorization server on loopback, playing the EHR's side of an EHR launch.

`launch(patient=..., app_context=...)` is the EHR opening the card's `smart` link: it returns the opaque
`launch` id the EHR would put in the launch URL. The server then answers as an EHR does:
- `{base}/.well-known/smart-configuration`: the endpoints, PKCE S256;
- `/auth/authorize`: checks the request (client, redirect URI, launch, aud, PKCE) and sends the browser
  back to the redirect URI with a one-time code (or `error=` when told to deny);
- `/auth/token`: checks the code, the redirect URI, the client and the PKCE verifier (RFC 7636 S256), and
  answers the launch context: `patient` and `appContext`.
Every request is kept in `received`; knobs let a test break each step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    params: dict[str, str]  # the query, or the form of a POST
    headers: dict[str, str]  # names lowercased


@dataclass
class EhrKnobs:
    configuration_status: int = 200
    configuration: dict[str, Any] = field(default_factory=dict)  # merged over the real document
    configuration_body: bytes | None = None  # sent instead of the document, as is
    deny: str | None = None  # authorize answers `error=<this>`
    response_iss: str | None = None  # the `iss` authorize sends back (RFC 9207) instead of the real one
    token_status: int = 200
    token_drop: tuple[str, ...] = ()  # members left out of the token response
    token_extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Launch:
    patient: str | None
    app_context: str | None


@dataclass
class _Code:
    launch: _Launch
    challenge: str
    redirect_uri: str
    client_id: str


class SmartEhr:
    """`with SmartEhr(client_id=..., redirect_uri=...) as ehr:` serves on loopback until the block ends."""

    def __init__(self, *, client_id: str, redirect_uri: str, client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.knobs = EhrKnobs()
        self.received: list[Received] = []
        self._launches: dict[str, _Launch] = {}
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02})

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The FHIR base URL: the launch's `iss`."""
        return f"{self.origin}/fhir"

    def launch(self, *, patient: str | None, app_context: str | None) -> str:
        launch_id = secrets.token_urlsafe(12)
        with self._lock:
            self._launches[launch_id] = _Launch(patient, app_context)
        return launch_id

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def __enter__(self) -> SmartEhr:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- what the handler calls --------------------------------------------------------------------------

    def configuration(self) -> tuple[int, dict[str, Any]]:
        document = {
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.origin}/auth/authorize",
            "token_endpoint": f"{self.origin}/auth/token",
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-ehr",
                "client-public",
                "client-confidential-symmetric",
                "context-ehr-patient",
            ],
            **self.knobs.configuration,
        }
        return self.knobs.configuration_status, document

    def authorize(self, params: dict[str, str]) -> tuple[int, str]:
        """(status, Location or a reason): a real EHR shows a page for a bad request, never redirects."""
        problems = [
            name
            for name, ok in (
                ("response_type", params.get("response_type") == "code"),
                ("client_id", params.get("client_id") == self.client_id),
                ("redirect_uri", params.get("redirect_uri") == self.redirect_uri),
                ("aud", params.get("aud") == self.base_url),
                ("code_challenge_method", params.get("code_challenge_method") == "S256"),
                ("code_challenge", len(params.get("code_challenge", "")) == 43),
                ("state", bool(params.get("state"))),
                ("scope", "launch" in params.get("scope", "").split()),
            )
            if not ok
        ]
        with self._lock:
            launch = self._launches.pop(params.get("launch", ""), None)
        if launch is None:
            problems.append("launch")
        if problems:
            return 400, f"bad authorize request: {', '.join(problems)}"
        back = {"state": params["state"]}
        _, document = self.configuration()
        if document.get("authorization_response_iss_parameter_supported") is True:
            back["iss"] = self.knobs.response_iss or document["issuer"]
        if self.knobs.deny:
            back["error"] = self.knobs.deny
        else:
            code = secrets.token_urlsafe(16)
            assert launch is not None
            with self._lock:
                self._codes[code] = _Code(
                    launch, params["code_challenge"], params["redirect_uri"], self.client_id
                )
            back["code"] = code
        return 302, f"{self.redirect_uri}?{urlencode(back)}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # one use
        if code is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != code.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        if self.knobs.token_status != 200:
            return self.knobs.token_status, {"error": "server_error"}
        answer: dict[str, Any] = {
            "access_token": "SECRET-ACCESS-TOKEN",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "launch",
            "patient": code.launch.patient,
            "appContext": code.launch.app_context,
            **self.knobs.token_extra,
        }
        answer = {k: v for k, v in answer.items() if v is not None and k not in self.knobs.token_drop}
        return 200, answer

    def _client_ok(self, form: dict[str, str], authorization: str | None) -> bool:
        if self.client_secret is None:
            return form.get("client_id") == self.client_id and authorization is None
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}" and "client_id" not in form


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], ehr: SmartEhr) -> None:
        super().__init__(address, handler)
        self.ehr = ehr


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `received` instead."""

    def _record(self, params: dict[str, str]) -> str:
        path = urlsplit(self.path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.ehr._lock:
            self.server.ehr.received.append(Received(self.command, path, params, headers))
        return path

    def do_GET(self) -> None:
        ehr = self.server.ehr
        params = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        path = self._record(params)
        if path == "/fhir/.well-known/smart-configuration" and ehr.knobs.configuration_body is not None:
            self._send(200, ehr.knobs.configuration_body, {"Content-Type": "application/json"})
        elif path == "/fhir/.well-known/smart-configuration":
            self._json(*ehr.configuration())
        elif path == "/auth/authorize":
            status, where = ehr.authorize(params)
            if status == 302:
                self._send(302, b"", {"Location": where})
            else:
                self._send(status, where.encode(), {"Content-Type": "text/plain"})
        else:
            self._send(404, b"", {})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        if self._record(form) == "/auth/token":
            self._json(*self.server.ehr.token(form, self.headers.get("Authorization")))
        else:
            self._send(404, b"", {})

    def _json(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
