"""JSON-lines logs: one line per request with the agreed fields, and the redaction safeguards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from service.config import ConfigError
from service.http.errors import register_error_handlers
from service.http.request_log import annotate, init_request_logging
from service.security import REQUEST_LOGGER, JsonLinesFormatter, configure_logging
from tests.security.harness import SERVICE_PATH, security_test_app, settings_for_tests

QUIETED = ("werkzeug", "flask_cors", "urllib3", "requests", "sqlalchemy")
ReadLines = Callable[[], list[dict[str, Any]]]
PATIENT_NAME = "Zebulon Quixotic"
JWT_LIKE = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"


@pytest.fixture
def json_log() -> Iterator[ReadLines]:
    """Everything logged during the test, as parsed JSON lines through the real formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous_level)


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == REQUEST_LOGGER]


# --- the formatter ------------------------------------------------------------------------------------


def test_a_record_becomes_one_json_line_with_its_extra_fields(json_log: ReadLines) -> None:
    logging.getLogger("lbp.test").warning("rules loaded: %d", 12, extra={"rules_version": "2021.1", "n": 3})

    [line] = json_log()
    assert line["level"] == "WARNING"
    assert line["logger"] == "lbp.test"
    assert line["message"] == "rules loaded: 12"
    assert line["rules_version"] == "2021.1"
    assert line["n"] == 3
    assert line["ts"].endswith("+00:00")


def test_secret_named_fields_are_blanked_even_when_nested(json_log: ReadLines) -> None:
    logging.getLogger("lbp.test").info(
        "fetch",
        extra={
            "access_token": "at-123",
            "Authorization": "Bearer at-123",
            "admin_password": "pw",
            "fetch": {"fhirAuthorization": {"access_token": "at-123"}, "status": 200},
        },
    )

    [line] = json_log()
    assert line["access_token"] == line["Authorization"] == line["admin_password"] == "[redacted]"
    assert line["fetch"] == {"fhirAuthorization": "[redacted]", "status": 200}
    assert "at-123" not in json.dumps(line)


def test_jwt_and_bearer_shaped_values_are_masked_wherever_they_turn_up(json_log: ReadLines) -> None:
    logging.getLogger("lbp.test").info(
        "header was Bearer abc.def.ghi and token %s", JWT_LIKE, extra={"note": [f"x {JWT_LIKE} y"]}
    )

    text = json.dumps(json_log())
    assert JWT_LIKE not in text
    assert "abc.def.ghi" not in text


def test_exceptions_are_logged_as_type_and_place_never_their_text(json_log: ReadLines) -> None:
    try:
        raise ValueError(f"invalid birthDate for {PATIENT_NAME}: 1961-07-14")
    except ValueError:
        logging.getLogger("lbp.test").exception("mapping failed")

    [line] = json_log()
    assert line["exc_type"] == "ValueError"
    assert any("test_request_log.py" in frame for frame in line["exc_where"])
    assert PATIENT_NAME not in json.dumps(line)
    assert "1961-07-14" not in json.dumps(line)


# --- the request line ---------------------------------------------------------------------------------


def test_exactly_one_line_per_request_with_the_agreed_fields(json_log: ReadLines) -> None:
    http = security_test_app(settings_for_tests(auth="disabled"), None).test_client()

    response = http.post(f"{SERVICE_PATH}?patient={PATIENT_NAME}", json={"hookInstance": "hi-1"})

    assert response.status_code == 200
    [line] = request_lines(json_log())
    assert line["message"] == "request"
    assert line["method"] == "POST"
    assert line["path"] == "/cds-services/<service_id>"  # the route pattern, no query string
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["hookInstance"] == "hi-1"
    assert line["service"] == "lbp-imaging-order-sign"
    assert line["rules"] == ["r-1"]
    assert line["outcome"] == "ok"
    assert PATIENT_NAME not in json.dumps(json_log())


def test_unrouted_paths_are_logged_by_their_first_segment_only(json_log: ReadLines) -> None:
    http = security_test_app(settings_for_tests(auth="disabled"), None).test_client()

    assert http.get("/Patient/mrn-99887766/_history").status_code == 404
    assert http.get("/nothing").status_code == 404

    assert [line["path"] for line in request_lines(json_log())] == ["/Patient/...", "/nothing"]


def test_an_error_answered_by_the_error_handlers_is_logged_once_with_its_status(json_log: ReadLines) -> None:
    app = Flask("failing")
    register_error_handlers(app)
    init_request_logging(app)

    @app.get("/boom")
    def boom() -> str:
        annotate(outcome="about-to-fail")
        raise RuntimeError(f"cannot rate order for {PATIENT_NAME}")

    assert app.test_client().get("/boom").status_code == 500
    [line] = request_lines(json_log())
    assert line["status"] == 500
    assert line["outcome"] == "about-to-fail"
    assert PATIENT_NAME not in json.dumps(json_log())


def test_an_exception_that_escapes_every_handler_is_still_logged_once(json_log: ReadLines) -> None:
    app = Flask("propagating")
    app.testing = True  # exceptions propagate to the test client instead of becoming a 500
    init_request_logging(app)
    init_request_logging(app)  # a second call adds nothing

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("escaped")

    with pytest.raises(RuntimeError):
        app.test_client().get("/boom")
    assert [line["status"] for line in request_lines(json_log())] == [500]


def test_annotate_outside_a_request_does_nothing_and_reserved_names_are_kept_apart(
    json_log: ReadLines,
) -> None:
    annotate(outcome="ignored")  # no request: no error, nothing logged
    app = Flask("annotating")
    init_request_logging(app)

    @app.get("/x")
    def view() -> str:
        annotate(name="clashes with LogRecord.name", message="and message", status=299, path="/forged")
        return "ok"

    app.test_client().get("/x")
    [line] = request_lines(json_log())
    assert line["logger"] == REQUEST_LOGGER
    assert line["message"] == "request"
    assert line["name_"] == "clashes with LogRecord.name"
    assert line["message_"] == "and message"
    assert (line["status"], line["path"]) == (200, "/x")  # what the request really was


# --- configure_logging ----------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, previous in quiet.items():
        logging.getLogger(name).setLevel(previous)


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_writes_json_lines_to_stderr_and_can_be_called_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("warning")
    configure_logging("debug")

    logging.getLogger("lbp.test").info("hello", extra={"token": "t"})
    logging.getLogger("werkzeug").info("127.0.0.1 - GET /cds-services?patient=x")
    logging.getLogger("urllib3.connectionpool").debug('"GET /fhir/Condition?patient=p-1 HTTP/1.1" 200')
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT ... ('p-1',)")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["message"], line["token"]) for line in lines] == [("hello", "[redacted]")]
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_names_a_bad_level() -> None:
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        configure_logging("LOUD")
