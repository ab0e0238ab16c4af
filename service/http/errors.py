"""JSON errors at the HTTP edge: ApiError, Werkzeug's own errors, the store and the unexpected."""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from service.errors import ApiError
from service.http.body import stop_reading
from service.store import StoreError

logger = logging.getLogger("lbp.errors")

# Werkzeug's own HTTP errors (routing, body size, methods) mapped to our codes.
_HTTP_CODES = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


def error_response(error: ApiError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 413:
            stop_reading(request)  # the body is not read: never drained on a request thread
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the limit of {limit} bytes"
        elif status == 404:
            message = "no such endpoint"
        elif status == 405:
            message = "method not allowed on this endpoint"
        else:
            message = error.description or error.name
        response = error_response(ApiError(status, _HTTP_CODES.get(status, "invalid-request"), message))
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(StoreError)
    def _store_unavailable(error: StoreError) -> Response:
        # No advice without its audit record: the client carries on without us and may retry.
        logger.error("audit store unavailable", extra={"error_type": type(error).__name__})
        return error_response(
            ApiError(503, "service-unavailable", "the audit store is unavailable; no advice was given")
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The type and where it was raised, never the message: exception text may quote patient data.
        frames = traceback.extract_tb(error.__traceback__)[-6:]
        logger.error(
            "unhandled error",
            extra={
                "error_type": type(error).__name__,
                "where": [
                    f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames
                ],
            },
        )
        return error_response(ApiError(500, "internal-error", "internal error; the incident was logged"))
