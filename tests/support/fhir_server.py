"""A small real FHIR R4 server on loopback for tests: reads and simple searches over in-memory resources.

It speaks just enough FHIR for the service's prefetch queries (`Patient/{id}`, `{Type}?patient=...`
with an optional `code=system|code,...` token filter and `_count`), pages searchsets with `next` links,
and has knobs a test sets per resource type (the first path segment after the base): a delay, an error
status (answered with an OperationOutcome), a redirect, an oversized or non-JSON body, a cookie. Every
request it receives is logged with its headers so tests can assert what reached it, and what did not.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased
    client_port: int  # a reused connection keeps its port


@dataclass
class Knobs:
    """Per-resource-type behaviour ("Condition", "Patient"...); a test sets these before calling."""

    delay_seconds: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)  # answered with an OperationOutcome body
    redirect_to: dict[str, str] = field(default_factory=dict)  # absolute or relative Location
    # Body of this many bytes ("[" then spaces: never valid JSON); declared in Content-Length or streamed.
    oversized_bytes: dict[str, int] = field(default_factory=dict)
    declare_oversized_length: bool = False
    raw_body: dict[str, bytes] = field(default_factory=dict)  # sent as is with status 200
    gzip_body: dict[str, bytes] = field(default_factory=dict)  # sent gzip-compressed, Content-Encoding: gzip
    # A body of this many bytes, one byte at a time with this pause between them: (bytes, seconds).
    trickle: dict[str, tuple[int, float]] = field(default_factory=dict)
    set_cookie: dict[str, str] = field(default_factory=dict)
    page_size: int | None = None  # None: one page unless the request has _count
    next_link_base: str | None = None  # make `next` links point at another base URL


class FhirTestServer:
    """`with FhirTestServer(resources) as server:` serves them at `server.base_url` until the block ends."""

    def __init__(self, resources: Iterable[dict[str, Any]] = (), *, base_path: str = "/fhir") -> None:
        self.base_path = base_path.rstrip("/")
        self.knobs = Knobs()
        self.received: list[ReceivedRequest] = []
        self.streamed_bytes: dict[str, int] = {}  # resource type -> body bytes written before the client left
        self._resources: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        for resource in resources:
            self.add(resource)
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fhir-test-server",
            daemon=True,
        )

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}{self.base_path}"

    def add(self, resource: dict[str, Any]) -> None:
        self._resources.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    def requests_for(self, resource_type: str) -> list[ReceivedRequest]:
        prefix = f"{self.base_path}/{resource_type}"
        return [r for r in self.received if r.path == prefix or r.path.startswith(prefix + "/")]

    def start(self) -> FhirTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on a delay knob
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FhirTestServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what the handler calls --------------------------------------------------------------------------

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.received.append(request)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return self._resources.get(resource_type, {}).get(resource_id)

    def search(self, resource_type: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        matches = list(self._resources.get(resource_type, {}).values())
        for patient in query.get("patient", []):
            matches = [r for r in matches if _patient_reference(r) == f"Patient/{patient}"]
        for codes in query.get("code", []):
            wanted = set(codes.split(","))
            matches = [r for r in matches if wanted & _codings(r)]
        return matches


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fhir: FhirTestServer) -> None:
        super().__init__(address, handler)
        self.fhir = fhir


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so tests can see connections being reused
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `received` instead."""

    def do_GET(self) -> None:
        fhir = self.server.fhir
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        fhir.record(
            ReceivedRequest(
                "GET",
                url.path,
                query,
                {name.lower(): value for name, value in self.headers.items()},
                self.client_address[1],
            )
        )
        if not url.path.startswith(fhir.base_path + "/"):
            self._outcome(404, "not-found", "not a FHIR endpoint")
            return
        segments = url.path.removeprefix(fhir.base_path + "/").split("/")
        resource_type = segments[0]
        if segments == ["metadata"]:
            self._json(
                200, {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"}
            )
            return
        knobs = fhir.knobs
        if resource_type in knobs.delay_seconds:
            fhir.sleep(knobs.delay_seconds[resource_type])
        if resource_type in knobs.redirect_to:
            self._send(302, b"", extra_headers={"Location": knobs.redirect_to[resource_type]})
        elif resource_type in knobs.status:
            status = knobs.status[resource_type]
            self._outcome(status, "exception", f"SECRET-SERVER-DETAIL status {status}")
        elif resource_type in knobs.oversized_bytes:
            self._oversized(resource_type, knobs.oversized_bytes[resource_type])
        elif resource_type in knobs.raw_body:
            self._send(200, knobs.raw_body[resource_type])
        elif resource_type in knobs.gzip_body:
            compressed = gzip.compress(knobs.gzip_body[resource_type])
            self._send(200, compressed, extra_headers={"Content-Encoding": "gzip"})
        elif resource_type in knobs.trickle:
            self._trickle(resource_type, *knobs.trickle[resource_type])
        elif len(segments) == 2:
            resource = fhir.read(resource_type, segments[1])
            if resource is None:
                self._outcome(404, "not-found", f"{resource_type}/{segments[1]} is not known")
            else:
                self._json(200, resource, cookie=knobs.set_cookie.get(resource_type))
        elif len(segments) == 1:
            self._searchset(resource_type, query, cookie=knobs.set_cookie.get(resource_type))
        else:
            self._outcome(400, "not-supported", "unsupported path")

    def _searchset(self, resource_type: str, query: dict[str, list[str]], cookie: str | None) -> None:
        fhir = self.server.fhir
        matches = fhir.search(resource_type, query)
        page_size = int(query["_count"][0]) if "_count" in query else fhir.knobs.page_size
        page = int(query.get("_page", ["1"])[0])
        if page_size is None:
            page_entries, more = matches, False
        else:
            page_entries = matches[(page - 1) * page_size : page * page_size]
            more = page * page_size < len(matches)
        base = fhir.knobs.next_link_base or fhir.base_url
        links = [
            {"relation": "self", "url": f"{fhir.base_url}/{resource_type}?{urlencode(query, doseq=True)}"}
        ]
        if more:
            next_query = {**query, "_page": [str(page + 1)]}
            links.append(
                {"relation": "next", "url": f"{base}/{resource_type}?{urlencode(next_query, doseq=True)}"}
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{fhir.base_url}/{resource_type}/{resource['id']}",
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in page_entries
            ],
        }
        self._json(200, bundle, cookie=cookie)

    def _oversized(self, resource_type: str, size: int) -> None:
        fhir = self.server.fhir
        self.send_response(200)
        self.send_header("Content-Type", FHIR_JSON)
        if fhir.knobs.declare_oversized_length:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"[" + b" " * (64 * 1024 - 1)
        sent = 0
        try:
            while sent < size and not fhir.stopping:
                part = chunk[: size - sent]
                self.wfile.write(part)
                sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the test wants to see
        finally:
            fhir.streamed_bytes[resource_type] = sent
            self.close_connection = True

    def _trickle(self, resource_type: str, size: int, pause_seconds: float) -> None:
        fhir = self.server.fhir
        self.send_response(200)
        self.send_header("Content-Type", FHIR_JSON)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        try:
            while sent < size and not fhir.stopping:
                self.wfile.write(b" ")
                self.wfile.flush()
                sent += 1
                fhir.sleep(pause_seconds)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: what the test wants to see
        finally:
            fhir.streamed_bytes[resource_type] = sent
            self.close_connection = True

    def do_POST(self) -> None:
        """A transaction Bundle at the base (PUT entries only, as the demo seeder sends)."""
        fhir = self.server.fhir
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fhir.record(ReceivedRequest("POST", url.path, parse_qs(url.query), headers, self.client_address[1]))
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path.rstrip("/") != fhir.base_path:
            self._outcome(404, "not-found", "transactions are posted to the base")
            return
        try:
            bundle = json.loads(body)
        except ValueError:
            self._outcome(400, "invalid", "not JSON")
            return
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            self._outcome(400, "invalid", "not a transaction Bundle")
            return
        responses = []
        for entry in bundle.get("entry", []):
            request, resource = entry.get("request", {}), entry.get("resource", {})
            expected = f"{resource.get('resourceType')}/{resource.get('id')}"
            if request.get("method") != "PUT" or request.get("url") != expected:
                self._outcome(400, "not-supported", f"only PUT {expected} is supported")
                return
            with fhir._lock:
                fhir.add(resource)
            responses.append({"response": {"status": "201 Created", "location": f"{expected}/_history/1"}})
        self._json(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": responses})

    def _outcome(self, status: int, code: str, text: str) -> None:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        }
        self._json(status, outcome)

    def _json(self, status: int, body: dict[str, Any], cookie: str | None = None) -> None:
        headers = {"Set-Cookie": cookie} if cookie else {}
        self._send(status, json.dumps(body).encode(), extra_headers=headers)

    def _send(self, status: int, body: bytes, extra_headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", FHIR_JSON)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (deadline): nothing to answer


def _patient_reference(resource: dict[str, Any]) -> str | None:
    for element in ("subject", "patient"):
        reference = resource.get(element, {}).get("reference")
        if reference:
            return str(reference)
    return None


def _codings(resource: dict[str, Any]) -> set[str]:
    codings = resource.get("code", {}).get("coding", [])
    return {f"{c.get('system')}|{c.get('code')}" for c in codings} | {str(c.get("code")) for c in codings}


@contextmanager
def running(resources: Iterable[dict[str, Any]] = ()) -> Iterator[FhirTestServer]:
    """A started server for the length of the block."""
    with FhirTestServer(resources) as server:
        yield server
