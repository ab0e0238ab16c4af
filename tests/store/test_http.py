"""The feedback endpoint and the admin read API over HTTP, on the real app (both databases).

Uses the lead's `app`/`client`/`make_client` fixtures (tests/conftest.py, responses checked against
openapi.yaml); this package's conftest makes `database_url` run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.http.context import EXTENSION_KEY
from service.store import Store
from tests.store.builders import START, ManualClock, assessment, database_connection, order
from tests.support.jwt_tokens import TokenMinter, client_entry, new_es384_key, write_clients_file

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIGN = "lbp-imaging-order-sign"
FEEDBACK = f"/cds-services/{SIGN}/feedback"
EHR = "https://ehr.example.org"


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**settings_overrides, "admin_token": ADMIN_TOKEN, "patient_hash_key": "hash-key-for-tests"}


def _store(app: Flask) -> Store:
    store: Store = app.extensions[EXTENSION_KEY].store
    return store


def _accepted(card: str, *suggestions: str, at: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": s} for s in suggestions or (f"{card}-suggestion",)],
        "outcomeTimestamp": at,
    }


def _overridden(card: str, **extra: Any) -> dict[str, Any]:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z", **extra}


# -- the feedback endpoint -------------------------------------------------------------------------


def test_feedback_is_linked_and_shown_on_the_assessment(
    app: Flask, client: FlaskClient, clock: ManualClock
) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None, orders=(order(1), order(2))))
    clock.now = START + timedelta(hours=1)
    body = {
        "feedback": [
            _accepted("card-1", "suggestion-1-a"),
            _overridden(
                "card-2",
                overrideReason={
                    "reason": {
                        "system": "https://lbp-imaging-cds.org/CodeSystem/override-reason",
                        "code": "x",
                    },
                    "userComment": "as discussed",
                },
            ),
        ]
    }

    response = client.post(FEEDBACK, json=body)

    assert response.status_code == 200
    assert response.json == {"received": 2, "linked": 2, "unknownCards": []}
    record = client.get("/assessments/assessment-1", headers=ADMIN).json
    assert record is not None
    assert [o["feedback"][0]["outcome"] for o in record["orders"]] == ["accepted", "overridden"]
    assert record["orders"][0]["feedback"][0]["acceptedSuggestions"] == ["suggestion-1-a"]
    assert record["orders"][1]["feedback"][0]["overrideReason"]["code"] == "x"
    assert record["orders"][1]["feedback"][0]["userCommentProvided"] is True
    assert record["orders"][1]["feedback"][0]["receivedAt"] == "2026-03-01T10:00:00Z"


# The three feedback bodies of the CDS Hooks 2.0.1 specification (section "Feedback"), as published.
SPEC_FEEDBACK_BODIES = [
    {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                "outcomeTimestamp": "2021-12-11T10:05:31Z",
            }
        ]
    },
    {
        "feedback": [
            {
                "card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb",
                "outcome": "overridden",
                "outcomeTimestamp": "2020-12-11T00:00:00Z",
            }
        ]
    },
    {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {
                        "code": "d7ecf885",
                        "system": "https://example.com/cds-hooks/override-reason-system",
                    },
                    "userComment": "A comment entered by the clinician.",
                },
                "outcomeTimestamp": "2020-12-11T00:00:00Z",
            }
        ]
    },
]


@pytest.mark.parametrize("body", SPEC_FEEDBACK_BODIES, ids=["accepted", "overridden", "with-reason"])
def test_the_specification_examples_are_accepted_and_their_unknown_cards_flagged(
    client: FlaskClient, body: dict[str, Any]
) -> None:
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 200
    assert response.json == {"received": 1, "linked": 0, "unknownCards": [body["feedback"][0]["card"]]}


def test_a_repeated_post_is_idempotent(app: Flask, client: FlaskClient) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None))
    body = {"feedback": [_accepted("card-1"), _overridden("ghost")]}

    first = client.post(FEEDBACK, json=body)
    second = client.post(FEEDBACK, json=body)

    assert first.json == second.json == {"received": 2, "linked": 1, "unknownCards": ["ghost"]}
    record = client.get("/assessments/assessment-1", headers=ADMIN).json
    assert len(record["orders"][0]["feedback"]) == 1  # type: ignore[index]


@pytest.mark.parametrize(
    "timestamp",
    [
        "2021-12-11T10:05:31Z",
        "2021-12-11t10:05:31z",
        "2021-12-11T12:05:31+02:00",
        "2021-12-11T10:05:31.123456789Z",
    ],
)
def test_rfc3339_timestamps_are_read_in_utc(app: Flask, client: FlaskClient, timestamp: str) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None))
    assert client.post(FEEDBACK, json={"feedback": [_accepted("card-1", at=timestamp)]}).status_code == 200
    record = client.get("/assessments/assessment-1", headers=ADMIN).json
    assert record["orders"][0]["feedback"][0]["outcomeTimestamp"].startswith("2021-12-11T10:05:31")  # type: ignore[index]


def test_harmless_quirks_of_real_clients_are_tolerated(app: Flask, client: FlaskClient) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None))
    item = _overridden("card-1", acceptedSuggestions=[], overrideReason={}, extension={"x": 1})
    response = client.post(FEEDBACK, json={"feedback": [item], "extension": {"vendor": True}})
    assert response.json == {"received": 1, "linked": 1, "unknownCards": []}


GOOD = _accepted("card-1")


@pytest.mark.parametrize(
    ("body", "location", "message"),
    [
        ([GOOD], None, "must be a JSON object"),
        ({}, "feedback", "non-empty array"),
        ({"feedback": []}, "feedback", "non-empty array"),
        ({"feedback": {"card": "x"}}, "feedback", "non-empty array"),
        ({"feedback": [GOOD] * 501}, "feedback", "at most 500"),
        ({"feedback": [GOOD, "x"]}, "feedback[1]", "must be a JSON object"),
        ({"feedback": [{**GOOD, "card": ""}]}, "feedback[0].card", "non-empty string"),
        (
            {"feedback": [{k: v for k, v in GOOD.items() if k != "card"}]},
            "feedback[0].card",
            "non-empty string",
        ),
        ({"feedback": [{**GOOD, "card": "c" * 129}]}, "feedback[0].card", "longer than 128"),
        (
            {"feedback": [GOOD, {**GOOD, "outcome": "ignored"}]},
            "feedback[1].outcome",
            "'accepted' or 'overridden'",
        ),
        ({"feedback": [{**GOOD, "outcome": None}]}, "feedback[0].outcome", "got nothing"),
        (
            {"feedback": [{k: v for k, v in GOOD.items() if k != "acceptedSuggestions"}]},
            "feedback[0].acceptedSuggestions",
            "required when outcome is 'accepted'",
        ),
        ({"feedback": [{**GOOD, "acceptedSuggestions": []}]}, "feedback[0].acceptedSuggestions", "required"),
        (
            {"feedback": [{**GOOD, "acceptedSuggestions": ["s"]}]},
            "feedback[0].acceptedSuggestions[0]",
            "object",
        ),
        (
            {"feedback": [{**GOOD, "acceptedSuggestions": [{"id": "a"}, {"uuid": "b"}]}]},
            "feedback[0].acceptedSuggestions[1].id",
            "non-empty string",
        ),
        (
            {"feedback": [_overridden("c", acceptedSuggestions=[{"id": "a"}])]},
            "feedback[0].acceptedSuggestions",
            "only allowed when outcome is 'accepted'",
        ),
        (
            {"feedback": [{**GOOD, "overrideReason": {"userComment": "no"}}]},
            "feedback[0].overrideReason",
            "only allowed when outcome is 'overridden'",
        ),
        (
            {"feedback": [_overridden("c", overrideReason="busy")]},
            "feedback[0].overrideReason",
            "must be an object",
        ),
        (
            {"feedback": [_overridden("c", overrideReason={"reason": {"system": "urn:x"}})]},
            "feedback[0].overrideReason.reason.code",
            "non-empty string",
        ),
        (
            {"feedback": [_overridden("c", overrideReason={"reason": "busy"})]},
            "feedback[0].overrideReason.reason",
            "Coding",
        ),
        (
            {"feedback": [_overridden("c", overrideReason={"userComment": 5})]},
            "feedback[0].overrideReason.userComment",
            "must be a string",
        ),
        (
            {"feedback": [{k: v for k, v in GOOD.items() if k != "outcomeTimestamp"}]},
            "feedback[0].outcomeTimestamp",
            "RFC 3339",
        ),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": "2021-12-11"}]},
            "feedback[0].outcomeTimestamp",
            "RFC 3339",
        ),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": "2021-12-11T10:05:31"}]},
            "feedback[0].outcomeTimestamp",
            "with an offset",
        ),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": "2021-13-11T10:05:31Z"}]},
            "feedback[0].outcomeTimestamp",
            "not a valid date-time",
        ),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": 1639217131}]},
            "feedback[0].outcomeTimestamp",
            "RFC 3339",
        ),
    ],
)
def test_bad_feedback_is_refused_naming_the_field_and_nothing_is_stored(
    app: Flask, client: FlaskClient, database_url: str, body: Any, location: str | None, message: str
) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None))

    response = client.post(FEEDBACK, json=body)

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"] == "invalid-request"
    assert message in response.json["message"]
    assert response.json.get("location") == location
    with database_connection(database_url) as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM feedback").scalar() == 0


def test_a_body_that_is_not_json_is_refused(client: FlaskClient) -> None:
    response = client.post(FEEDBACK, data=b"{feedback: nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"] == "invalid-json"


def test_feedback_to_an_unknown_service_is_404(client: FlaskClient) -> None:
    response = client.post("/cds-services/no-such-service/feedback", json={"feedback": [GOOD]})
    assert response.status_code == 404
    assert response.json == {"error": "not-found", "message": "no CDS service with this id"}


def test_the_comment_text_reaches_neither_the_database_nor_the_log(
    app: Flask, client: FlaskClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _store(app).save_assessment(assessment(1, client_iss=None))
    comment = "Mr Johnathan Placeholder-Smith, DOB 1961-02-03, refused"
    caplog.set_level(logging.DEBUG)

    body = {"feedback": [_overridden("card-1", overrideReason={"userComment": comment})]}
    assert client.post(FEEDBACK, json=body).status_code == 200

    assert "Placeholder-Smith" not in caplog.text
    for record in caplog.records:
        assert "Placeholder-Smith" not in json.dumps(record.__dict__, default=str)
    with database_connection(database_url) as connection:
        rows = connection.exec_driver_sql("SELECT * FROM feedback").all()
    assert len(rows) == 1
    assert "Placeholder-Smith" not in repr(rows)


def test_with_authentication_feedback_links_only_to_the_cards_given_to_that_client(
    make_client: Callable[..., FlaskClient], tmp_path: Path, clock: ManualClock
) -> None:
    ehr_key, other_key = new_es384_key(), new_es384_key()
    clients_file = write_clients_file(
        tmp_path / "clients.yaml",
        [client_entry(EHR, keys=[ehr_key]), client_entry("https://other.example", keys=[other_key])],
    )
    client = make_client(auth="required", clients_file=str(clients_file))
    app = client.application
    _store(app).save_assessment(assessment(1, client_iss=EHR))
    ehr = TokenMinter(ehr_key, iss=EHR, base_url="http://localhost", clock=clock)
    other = TokenMinter(other_key, iss="https://other.example", base_url="http://localhost", clock=clock)
    body = {"feedback": [_accepted("card-1")]}

    assert client.post(FEEDBACK, json=body).status_code == 401
    from_other = client.post(FEEDBACK, json=body, headers=other.headers(FEEDBACK))
    from_ehr = client.post(FEEDBACK, json=body, headers=ehr.headers(FEEDBACK))

    assert from_other.json == {"received": 1, "linked": 0, "unknownCards": ["card-1"]}
    assert from_ehr.json == {"received": 1, "linked": 1, "unknownCards": []}
    feedback = client.get("/assessments/assessment-1", headers=ADMIN).json["orders"][0]["feedback"]  # type: ignore[index]
    assert len(feedback) == 1


# -- the admin read API ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/assessments/assessment-1", "/reports/summary"])
def test_admin_endpoints_do_not_exist_without_an_admin_token(
    make_client: Callable[..., FlaskClient], path: str
) -> None:
    client = make_client(admin_token=None)
    response = client.get(path, headers=ADMIN)
    assert response.status_code == 404
    assert response.json is not None
    assert response.json["error"] == "not-found"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}])
@pytest.mark.parametrize("path", ["/assessments/assessment-1", "/reports/summary"])
def test_admin_endpoints_need_the_token(client: FlaskClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized"}


def test_an_unknown_assessment_is_404(client: FlaskClient) -> None:
    for assessment_id in ("nope", "x" * 500):
        response = client.get(f"/assessments/{assessment_id}", headers=ADMIN)
        assert response.status_code == 404
        assert response.json is not None
        assert response.json["error"] == "not-found"


def test_an_assessment_and_its_feedback_survive_a_restart(
    make_client: Callable[..., FlaskClient], clock: ManualClock
) -> None:
    first = make_client()
    _store(first.application).save_assessment(assessment(1, client_iss=None))
    assert first.post(FEEDBACK, json={"feedback": [_accepted("card-1")]}).status_code == 200
    before = first.get("/assessments/assessment-1", headers=ADMIN).json
    _store(first.application).close()

    restarted = make_client()  # a new app on the same database
    assert restarted.get("/assessments/assessment-1", headers=ADMIN).json == before
    assert before is not None
    assert before["orders"][0]["feedback"][0]["outcome"] == "accepted"


def test_the_summary_report_defaults_to_the_last_30_days(
    app: Flask, client: FlaskClient, clock: ManualClock
) -> None:
    store = _store(app)
    store.save_assessment(assessment(1, created_at=START - timedelta(days=31)))  # too old
    store.save_assessment(assessment(2, created_at=START - timedelta(days=29)))
    store.save_assessment(assessment(3, created_at=START - timedelta(days=1), orders=(order(3), order(4))))

    report = client.get("/reports/summary", headers=ADMIN).json

    assert report is not None
    assert (report["from"], report["to"]) == ("2026-01-30T09:00:00Z", "2026-03-01T09:00:00Z")
    assert (report["assessments"], report["orders"]) == (2, 3)


def test_the_summary_report_takes_a_period(app: Flask, client: FlaskClient) -> None:
    store = _store(app)
    store.save_assessment(assessment(1, created_at=START - timedelta(days=40)))
    store.save_assessment(assessment(2, created_at=START - timedelta(days=35)))

    report = client.get("/reports/summary?from=2026-01-01&to=2026-01-22", headers=ADMIN).json

    assert report is not None
    assert (report["from"], report["to"], report["assessments"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-23T00:00:00Z",
        1,
    )


@pytest.mark.parametrize(
    ("query", "location"),
    [("from=last-week", "from"), ("to=2026-02-30", "to"), ("from=2026-02-10&to=2026-02-01", "from")],
)
def test_a_bad_report_period_is_400(client: FlaskClient, query: str, location: str) -> None:
    response = client.get(f"/reports/summary?{query}", headers=ADMIN)
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["location"] == location
