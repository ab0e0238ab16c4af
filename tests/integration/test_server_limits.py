"""Faults that live in the server layer, through real gunicorn from gunicorn.conf.py over raw sockets: a body
shorter than its Content-Length, a chunked body over the limit, gunicorn's own 414 and 431, a non-UTF-8
body. Every answer is the project's JSON error; none holds a request thread until the client gives up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow
SIGN = "/cds-services/lbp-imaging-order-sign"
BODY_LIMIT = 64 * 1024
READ_TIMEOUT = 1.0
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp_path = tmp_path_factory.mktemp("limits")
    port = _free_port()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "CDS_AUTH": "disabled",
        "CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'limits.db'}",
        "CDS_MAX_BODY_BYTES": str(BODY_LIMIT),
        "CDS_BODY_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--config",
                "gunicorn.conf.py",
                "service:create_app()",
            ],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield "127.0.0.1", port
        finally:
            process.terminate()
            process.wait(timeout=30)


def _exchange(address: tuple[str, int], raw: bytes, *, wait: float = 15.0) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes (keeping the socket open for writing) and read the whole answer."""
    with socket.create_connection(address, timeout=wait) as sock:
        sock.sendall(raw)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            headers = _headers(head)
            if "content-length" in headers and len(body) >= int(headers["content-length"]):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, _headers(head), json.loads(body)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


def _post(path: str, headers: str = "", body: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n".encode() + body
    )


def test_a_body_shorter_than_its_content_length_gets_a_408_and_frees_the_thread(
    server: tuple[str, int],
) -> None:
    started = time.monotonic()
    status, _, body = _exchange(server, _post(SIGN, "Content-Length: 5000\r\n", b'{"hook":1}'))
    waited = time.monotonic() - started
    assert status == 408
    assert body["error"] == "request-timeout"
    assert waited < 10  # bounded by the read timeout (1 s here), not by the client (it never gave up)
    # Four of them at once (every thread of the worker) still leave the service answering afterwards.
    stalled = [socket.create_connection(server) for _ in range(4)]
    try:
        for sock in stalled:
            sock.sendall(_post(SIGN, "Content-Length: 5000\r\n", b"{"))
        time.sleep(READ_TIMEOUT * 2.5)
        assert requests.get(f"http://{server[0]}:{server[1]}/healthz", timeout=5).status_code == 200
    finally:
        for sock in stalled:
            sock.close()


def test_a_chunked_body_over_the_limit_is_a_413_not_a_truncated_400(server: tuple[str, int]) -> None:
    payload = b'{"hook": "order-sign", "pad": "' + b"x" * (BODY_LIMIT + 1000) + b'"}'
    chunks = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (payload[i : i + 8192] for i in range(0, len(payload), 8192))
    )
    status, _, body = _exchange(server, _post(SIGN, "Transfer-Encoding: chunked\r\n", chunks + b"0\r\n\r\n"))
    assert status == 413
    assert body["error"] == "payload-too-large"


def test_a_declared_length_over_the_limit_is_a_413_without_reading_the_body(server: tuple[str, int]) -> None:
    started = time.monotonic()
    raw = _post(SIGN, f"Content-Length: {BODY_LIMIT * 100}\r\n", b"{")  # the rest never comes
    status, _, body = _exchange(server, raw)
    assert status == 413
    assert body["error"] == "payload-too-large"
    assert time.monotonic() - started < 10  # not waiting for a body it refused


def test_a_chunked_body_within_the_limit_is_read_whole(server: tuple[str, int]) -> None:
    request = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    payload = json.dumps(request).encode()
    assert len(payload) < BODY_LIMIT
    chunked = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    status, _, body = _exchange(server, _post(SIGN, "Transfer-Encoding: chunked\r\n", chunked))
    assert status == 200
    assert body["cards"]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /healthz?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri-too-long"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(101))
            + b"\r\n",
            431,
            "headers-too-large",
        ),
        (b"GARBAGE\r\n\r\n", 400, "invalid-request"),
    ],
)
def test_gunicorns_own_errors_are_the_projects_json(
    server: tuple[str, int], raw: bytes, status: int, code: str
) -> None:
    answered, headers, body = _exchange(server, raw)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert body["error"] == code
    assert "q" * 50 not in body["message"]  # the offending input is not echoed


def test_a_utf16_body_is_a_400_through_the_server(server: tuple[str, int]) -> None:
    payload = json.dumps({"hook": "order-sign"}).encode("utf-16")
    status, _, body = _exchange(server, _post(SIGN, f"Content-Length: {len(payload)}\r\n", payload))
    assert status == 400
    assert "UTF-8" in body["message"]
