"""Feedback is linked to its card's assessment, kept once however often it is sent, and unknown cards
are kept and flagged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from service.store import FeedbackReceipt, Store
from service.store.schema import feedback
from tests.store.builders import (
    OVERRIDE_SYSTEM,
    START,
    ManualClock,
    accepted,
    assessment,
    database_connection,
    order,
    overridden,
)

LATER = START + timedelta(hours=1)


def _feedback_rows(database_url: str) -> list[dict[str, object]]:
    with database_connection(database_url) as connection:
        return [dict(row) for row in connection.execute(select(feedback).order_by(feedback.c.id)).mappings()]


def test_feedback_round_trip_shows_on_the_order_it_is_about(store: Store, clock: ManualClock) -> None:
    store.save_assessment(assessment(1, orders=(order(1), order(2))))
    clock.now = LATER + timedelta(seconds=3)

    receipt = store.save_feedback(
        "lbp-imaging-order-sign",
        [
            accepted("card-1", LATER, "suggestion-1-a"),
            overridden("card-2", LATER + timedelta(seconds=1), "not-applicable", comment=True),
        ],
        client_iss="https://ehr.example.org",
    )

    assert receipt == FeedbackReceipt(received=2, linked=2, unknown_cards=())
    assert receipt.as_json() == {"received": 2, "linked": 2, "unknownCards": []}
    orders = store.get_assessment("assessment-1")["orders"]  # type: ignore[index]
    assert orders[0]["feedback"] == [
        {
            "outcome": "accepted",
            "outcomeTimestamp": "2026-03-01T10:00:00Z",
            "receivedAt": "2026-03-01T10:00:03Z",
            "acceptedSuggestions": ["suggestion-1-a"],
            "userCommentProvided": False,
        }
    ]
    assert orders[1]["feedback"] == [
        {
            "outcome": "overridden",
            "outcomeTimestamp": "2026-03-01T10:00:01Z",
            "receivedAt": "2026-03-01T10:00:03Z",
            "overrideReason": {
                "system": OVERRIDE_SYSTEM,
                "code": "not-applicable",
                "display": "Reason not-applicable",
            },
            "userCommentProvided": True,
        }
    ]


def test_several_items_on_one_card_are_kept_in_outcome_order(store: Store) -> None:
    store.save_assessment(assessment(1))
    store.save_feedback(
        "lbp-imaging-order-sign",
        [accepted("card-1", LATER + timedelta(minutes=5)), overridden("card-1", LATER)],
        client_iss="https://ehr.example.org",
    )
    outcomes = [item["outcome"] for item in store.get_assessment("assessment-1")["orders"][0]["feedback"]]  # type: ignore[index]
    assert outcomes == ["overridden", "accepted"]


def test_a_repeated_item_is_stored_once_and_answered_the_same(store: Store, database_url: str) -> None:
    store.save_assessment(assessment(1))
    item = overridden("card-1", LATER, "patient-preference")
    first = store.save_feedback("lbp-imaging-order-sign", [item, item], client_iss="https://ehr.example.org")
    again = store.save_feedback("lbp-imaging-order-sign", [item], client_iss="https://ehr.example.org")

    assert first == FeedbackReceipt(received=2, linked=2)
    assert again == FeedbackReceipt(received=1, linked=1)
    assert len(_feedback_rows(database_url)) == 1


def test_items_that_differ_are_all_kept(store: Store, database_url: str) -> None:
    store.save_assessment(assessment(1))
    store.save_feedback(
        "lbp-imaging-order-sign",
        [
            overridden("card-1", LATER, "a"),
            overridden("card-1", LATER, "b"),  # another reason
            overridden("card-1", LATER + timedelta(seconds=1), "a"),  # another time
            accepted("card-1", LATER, "suggestion-1-a"),  # another outcome
        ],
        client_iss="https://ehr.example.org",
    )
    assert len(_feedback_rows(database_url)) == 4


def test_an_unknown_card_is_kept_and_flagged(store: Store, database_url: str) -> None:
    store.save_assessment(assessment(1))
    receipt = store.save_feedback(
        "lbp-imaging-order-sign",
        [
            accepted("card-1", LATER),
            overridden("no-such-card", LATER),
            overridden("no-such-card", LATER, "x"),
        ],
        client_iss="https://ehr.example.org",
    )
    assert receipt == FeedbackReceipt(received=3, linked=1, unknown_cards=("no-such-card",))
    rows = _feedback_rows(database_url)
    assert [(row["card_uuid"], row["unknown_card"], row["assessment_id"]) for row in rows] == [
        ("card-1", False, "assessment-1"),
        ("no-such-card", True, None),
        ("no-such-card", True, None),
    ]


def test_a_card_of_another_service_or_client_is_not_linked(store: Store) -> None:
    store.save_assessment(assessment(1))  # order-sign, given to https://ehr.example.org
    other_service = store.save_feedback(
        "lbp-imaging-order-select", [accepted("card-1", LATER)], client_iss="https://ehr.example.org"
    )
    other_client = store.save_feedback(
        "lbp-imaging-order-sign", [accepted("card-1", LATER)], client_iss="https://intruder.example"
    )
    no_client = store.save_feedback("lbp-imaging-order-sign", [accepted("card-1", LATER)], client_iss=None)

    for receipt in (other_service, other_client, no_client):
        assert receipt == FeedbackReceipt(received=1, linked=0, unknown_cards=("card-1",))
    assert store.get_assessment("assessment-1")["orders"][0]["feedback"] == []  # type: ignore[index]


def test_without_authentication_cards_given_to_no_client_are_linked(store: Store) -> None:
    store.save_assessment(assessment(1, client_iss=None))
    receipt = store.save_feedback("lbp-imaging-order-sign", [accepted("card-1", LATER)])
    assert receipt == FeedbackReceipt(received=1, linked=1)


def test_the_comment_text_is_never_stored(store: Store, database_url: str) -> None:
    store.save_assessment(assessment(1))
    store.save_feedback(
        "lbp-imaging-order-sign",
        [overridden("card-1", LATER, "x", comment=True)],
        client_iss="https://ehr.example.org",
    )
    (row,) = _feedback_rows(database_url)
    assert row["user_comment_present"] is True
    assert not any("comment" in name and name != "user_comment_present" for name in row)


def test_feedback_is_still_there_after_reopening(open_store: Callable[..., Store], database_url: str) -> None:
    first = open_store()
    first.save_assessment(assessment(1))
    first.save_feedback(
        "lbp-imaging-order-sign", [accepted("card-1", LATER)], client_iss="https://ehr.example.org"
    )
    first.close()
    again = open_store()
    assert len(again.get_assessment("assessment-1")["orders"][0]["feedback"]) == 1  # type: ignore[index]
    with database_connection(database_url) as connection:
        assert connection.execute(select(func.count()).select_from(feedback)).scalar_one() == 1
