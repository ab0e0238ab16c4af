"""Retention deletes what is older than the cutoff and nothing else; the JWT replay guard is shared by
every process on the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.store import Store
from service.store import store as store_module
from service.store.schema import assessment_orders, assessments, feedback, jwt_replay
from service.store.store import REPLAY_SWEEP_INTERVAL
from tests.store.builders import (
    START,
    ManualClock,
    accepted,
    assessment,
    database_connection,
    order,
    overridden,
)

ISS = "https://ehr.example.org"
SIGN = "lbp-imaging-order-sign"


def _counts(database_url: str) -> dict[str, int]:
    with database_connection(database_url) as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (assessments, assessment_orders, feedback, jwt_replay)
        }


def test_purge_deletes_old_records_with_their_orders_and_feedback(
    store: Store, clock: ManualClock, database_url: str
) -> None:
    cutoff = START + timedelta(days=10)
    store.save_assessment(
        assessment(1, created_at=cutoff - timedelta(seconds=1), orders=(order(1), order(11)))
    )
    store.save_assessment(assessment(2, created_at=cutoff))  # exactly at the cutoff: kept
    store.save_assessment(assessment(3, created_at=cutoff + timedelta(days=1), orders=(order(3),)))
    clock.now = cutoff - timedelta(hours=1)
    store.save_feedback(
        SIGN, [accepted("card-1", clock.now), overridden("old-ghost", clock.now)], client_iss=ISS
    )
    clock.now = cutoff + timedelta(days=2)
    store.save_feedback(
        SIGN, [accepted("card-3", clock.now), overridden("new-ghost", clock.now)], client_iss=ISS
    )

    deleted = store.purge_older_than(cutoff)

    assert deleted == 2  # assessment-1 (with 2 orders and 1 feedback item) and the old unknown-card item
    assert store.get_assessment("assessment-1") is None
    assert store.get_assessment("assessment-2") is not None
    assert len(store.get_assessment("assessment-3")["orders"][0]["feedback"]) == 1  # type: ignore[index]
    assert _counts(database_url) == {"assessments": 2, "assessment_orders": 2, "feedback": 2, "jwt_replay": 0}
    assert store.purge_older_than(cutoff) == 0


def test_purge_works_through_more_rows_than_one_batch(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "PURGE_BATCH", 4)
    total = 4 * 2 + 3
    for number in range(total):
        store.save_assessment(assessment(number, created_at=START, orders=(order(number),)))
    store.save_assessment(assessment(total, created_at=START + timedelta(days=1)))

    assert store.purge_older_than(START + timedelta(hours=1)) == total
    assert _counts(database_url)["assessments"] == 1


def test_a_token_id_is_accepted_once_across_two_workers(open_store: Callable[..., Store]) -> None:
    worker_a, worker_b = open_store(), open_store()
    expires = START + timedelta(minutes=5)

    assert worker_a.first_use(ISS, "jti-1", expires) is True
    assert worker_b.first_use(ISS, "jti-1", expires) is False  # replayed to another worker
    assert worker_a.first_use(ISS, "jti-1", expires) is False
    assert worker_b.first_use("https://other.example", "jti-1", expires) is True  # ids are per issuer
    assert worker_b.first_use(ISS, "jti-2", expires) is True


def test_expired_token_ids_are_swept_now_and_then(
    open_store: Callable[..., Store], clock: ManualClock, database_url: str
) -> None:
    store = open_store(replay_grace=timedelta(minutes=10))
    store.first_use(ISS, "old", START + timedelta(minutes=1))
    store.first_use(ISS, "fresh", START + timedelta(hours=2))
    clock.now = START + timedelta(minutes=11) + REPLAY_SWEEP_INTERVAL  # "old" is past expiry + grace
    store.first_use(ISS, "another", START + timedelta(hours=2))  # triggers a sweep
    with database_connection(database_url) as connection:
        kept = set(connection.execute(select(jwt_replay.c.jti)).scalars())
    assert kept == {"fresh", "another"}
    # Within the grace period a replay is still caught.
    assert store.first_use(ISS, "fresh", START + timedelta(hours=2)) is False


def test_purge_also_sweeps_expired_token_ids(store: Store, clock: ManualClock, database_url: str) -> None:
    store.first_use(ISS, "old", START)
    clock.now = START + timedelta(hours=1)
    store.purge_older_than(START - timedelta(days=1))
    assert _counts(database_url)["jwt_replay"] == 0


def test_an_overlong_token_id_is_refused_not_stored(store: Store, database_url: str) -> None:
    assert store.first_use(ISS, "j" * 1000, START + timedelta(minutes=5)) is False
    assert _counts(database_url)["jwt_replay"] == 0
