"""Small typed helpers for HTTP tests."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse


def json_of(response: TestResponse) -> Any:
    """The response's JSON body; fails the test when there is none."""
    body = response.get_json(silent=True)
    assert body is not None, f"{response.status_code} response has no JSON body: {response.data[:200]!r}"
    return body
