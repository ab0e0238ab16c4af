"""Reading a JSON request body: parsed once, with limits on size and nesting depth."""

from __future__ import annotations

import json
from typing import Any

from flask import Request

from service.errors import ApiError, bad_request


def _nesting_depth_exceeds(document: Any, limit: int) -> bool:
    """True when arrays/objects nest deeper than `limit`.

    Level by level rather than recursive, so a hostile body cannot exhaust the stack; about 1 ms for a
    200-resource prefetch (json.loads itself refuses nesting beyond the interpreter's recursion limit).
    """
    frontier: list[Any] = [document] if type(document) is dict or type(document) is list else []
    depth = 1
    while frontier:
        if depth > limit:
            return True
        deeper: list[Any] = []
        for node in frontier:
            children = node.values() if type(node) is dict else node
            deeper.extend([child for child in children if type(child) is dict or type(child) is list])
        frontier = deeper
        depth += 1
    return False


def read_json_body(request: Request, *, max_depth: int) -> Any:
    """The body as JSON, or a 400/415 naming what is wrong. The size limit is Werkzeug's (413)."""
    mimetype = request.mimetype
    if (
        mimetype
        and mimetype not in ("application/json", "application/fhir+json")
        and not (mimetype.startswith("application/") and mimetype.endswith("+json"))
    ):
        raise ApiError(
            415, "unsupported-media-type", f"Content-Type must be application/json, not {mimetype}"
        )
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise bad_request("request body is empty; a JSON object is required")
    try:
        document = json.loads(raw)
    except RecursionError:
        raise bad_request(f"JSON nests deeper than the limit of {max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        # The position only: the message of a decode error can quote the body.
        where = (
            f" at line {error.lineno}, column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        raise ApiError(400, "invalid-json", f"request body is not valid JSON{where}") from None
    if _nesting_depth_exceeds(document, max_depth):
        raise bad_request(f"JSON nests deeper than the limit of {max_depth} levels")
    return document
