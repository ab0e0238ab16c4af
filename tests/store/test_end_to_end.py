"""Through the real hook: every judged order is stored with its card, feedback on that card lands on it,
and a burst of hook calls and feedback posts from several threads loses and duplicates nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.store.builders import database_connection, hook_request, run_together

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIGN = "lbp-imaging-order-sign"


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**settings_overrides, "admin_token": ADMIN_TOKEN, "patient_hash_key": "hash-key-for-tests"}


def _assessment_id(card: dict[str, Any]) -> str:
    value: str = card["extension"]["lbp-imaging-cds"]["assessmentId"]
    return value


def test_every_judged_order_is_stored_with_its_card_and_the_feedback_on_it(client: FlaskClient) -> None:
    answer = client.post(f"/cds-services/{SIGN}", json=hook_request(lumbar_xray_too=True))
    assert answer.status_code == 200
    cards = answer.json["cards"]  # type: ignore[index]
    assert len(cards) == 2
    assessment_id = _assessment_id(cards[0])

    record = client.get(f"/assessments/{assessment_id}", headers=ADMIN).json
    assert record is not None
    by_order = {order["orderReference"]: order for order in record["orders"]}
    assert set(by_order) == {"ServiceRequest/draft-mri-1", "ServiceRequest/draft-xr-1"}
    assert {order["cardUuid"] for order in record["orders"]} == {card["uuid"] for card in cards}
    assert record["serviceId"] == SIGN
    assert "patientKey" in record
    assert "example-lbp-1" not in json.dumps(record)  # the patient id is only a keyed hash

    feedback = {
        "feedback": [
            {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"},
            {"card": cards[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:01Z"},
        ]
    }
    assert client.post(f"/cds-services/{SIGN}/feedback", json=feedback).json == {
        "received": 2,
        "linked": 2,
        "unknownCards": [],
    }
    after = client.get(f"/assessments/{assessment_id}", headers=ADMIN).json
    assert [len(order["feedback"]) for order in after["orders"]] == [1, 1]  # type: ignore[index]


THREADS = 8
CALLS_PER_THREAD = 25


def test_a_burst_of_hook_calls_and_feedback_posts_from_threads_loses_nothing(
    app: Flask, database_url: str
) -> None:
    cards_seen: list[str] = []
    failures: list[str] = []

    def caller() -> None:
        client = FlaskClient(app)  # a plain client per thread, as each gunicorn thread serves its own call
        for _ in range(CALLS_PER_THREAD):
            answer = client.post(f"/cds-services/{SIGN}", json=hook_request())
            if answer.status_code != 200:
                failures.append(f"hook {answer.status_code}")
                continue
            card = answer.json["cards"][0]  # type: ignore[index]
            cards_seen.append(card["uuid"])
            item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
            posted = client.post(f"/cds-services/{SIGN}/feedback", json={"feedback": [item]})
            if posted.json != {"received": 1, "linked": 1, "unknownCards": []}:
                failures.append(f"feedback {posted.status_code} {posted.json}")

    assert run_together([caller] * THREADS) == []
    assert failures == []
    calls = THREADS * CALLS_PER_THREAD
    assert len(set(cards_seen)) == calls
    with database_connection(database_url) as connection:
        counts = {
            table: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()  # noqa: S608
            for table in ("assessments", "assessment_orders", "feedback")
        }
    assert counts == {"assessments": calls, "assessment_orders": calls, "feedback": calls}
