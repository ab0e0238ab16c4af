"""Errors the client can act on, raised anywhere in the core; `service.http.errors` turns them into JSON.

Every 4xx/5xx answer is `{"error", "message", "location"?}`; never a stack trace.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client can act on: status, a stable code, a message and where in the input."""

    def __init__(self, status: int, code: str, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.location = location

    def body(self) -> dict[str, Any]:
        if self.status == 401:
            return {"error": "unauthorized"}  # the spec's rule: no detail for the caller
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.location:
            body["location"] = self.location
        return body


def bad_request(message: str, location: str | None = None) -> ApiError:
    return ApiError(400, "invalid-request", message, location)
