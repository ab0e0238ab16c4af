"""The gunicorn worker the service runs on: gthread, with gunicorn's own error pages in the project's JSON.

Gunicorn answers some faults before the app sees the request (a request line over `limit_request_line`:
414; more than `limit_request_fields` headers: 431; a malformed request line or chunk: 400) with an HTML
page that names the faulty input. Clients of this service parse every error as `{"error", "message"}`,
and the input may carry identifiers, so the page is replaced by the same JSON body, in our words.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

_CODES = {
    400: ("invalid-request", "the request line or headers could not be parsed"),
    403: ("forbidden", "the request was refused"),
    414: ("uri-too-long", "the request line is longer than the server accepts (8190 bytes)"),
    417: ("invalid-request", "the Expect header cannot be met"),
    431: ("headers-too-large", "the request has more or larger headers than the server accepts"),
    500: ("internal-error", "the server could not handle the request"),
    501: ("invalid-request", "the transfer coding is not supported"),
}


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """`gunicorn.util.write_error`, in the project's JSON error shape (gunicorn's message is not echoed)."""
    code, message = _CODES.get(status_int, ("invalid-request", "the request could not be handled"))
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class JsonErrorsThreadWorker(ThreadWorker):  # type: ignore[misc]
    def init_process(self) -> None:
        # Every error page this worker writes goes through util.write_error (gunicorn.workers.base).
        util.write_error = write_json_error
        super().init_process()
