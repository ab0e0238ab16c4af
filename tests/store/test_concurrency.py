"""Several workers and threads writing at once lose nothing and duplicate nothing."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from service.store import FeedbackReceipt, Store
from service.store.schema import assessment_orders, assessments, feedback
from tests.store.builders import (
    START,
    accepted,
    assessment,
    database_connection,
    order,
    overridden,
    run_together,
)

WORKERS = 2  # Store instances on one database, as gunicorn workers have
THREADS_PER_WORKER = 4
SAVES_PER_THREAD = 50
ISS = "https://ehr.example.org"
SIGN = "lbp-imaging-order-sign"


def _count(database_url: str, table: object) -> int:
    with database_connection(database_url) as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_burst_of_saves_and_feedback_from_threads_and_workers_loses_nothing(
    open_store: Callable[..., Store], database_url: str
) -> None:
    workers = [open_store() for _ in range(WORKERS)]
    receipts: list[FeedbackReceipt] = []
    first_uses: list[bool] = []

    def job(thread_number: int) -> Callable[[], None]:
        store = workers[thread_number % WORKERS]

        def work() -> None:
            for index in range(SAVES_PER_THREAD):
                number = thread_number * 1000 + index
                store.save_assessment(assessment(number, orders=(order(number), order(number + 500))))
                at = START + timedelta(minutes=index)
                receipts.append(store.save_feedback(SIGN, [accepted(f"card-{number}", at)], client_iss=ISS))
                # Every thread also repeats one shared item and replays one shared token id.
                receipts.append(store.save_feedback(SIGN, [overridden("shared-card", START)], client_iss=ISS))
                first_uses.append(store.first_use(ISS, f"jti-{index}", START + timedelta(hours=1)))

        return work

    threads = WORKERS * THREADS_PER_WORKER
    errors = run_together([job(number) for number in range(threads)])

    assert errors == []
    saves = threads * SAVES_PER_THREAD
    assert _count(database_url, assessments) == saves
    assert _count(database_url, assessment_orders) == 2 * saves
    assert _count(database_url, feedback) == saves + 1  # the shared repeat is stored once
    assert sum(receipt.linked for receipt in receipts) == saves
    assert first_uses.count(True) == SAVES_PER_THREAD  # each token id accepted exactly once
    assert len(first_uses) == saves


def _save_in_child(store: Store, first: int, count: int) -> None:
    for number in range(first, first + count):
        store.save_assessment(assessment(number, orders=(order(number),)))
    store.close()


def test_forked_workers_sharing_a_store_opened_before_the_fork_lose_nothing(
    open_store: Callable[..., Store], database_url: str
) -> None:
    store = open_store()  # like gunicorn's preload_app: opened in the parent, pool already in use
    store.save_assessment(assessment(0))
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_save_in_child, args=(store, 1 + 100 * n, 100)) for n in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)

    assert [child.exitcode for child in children] == [0, 0, 0]
    assert _count(database_url, assessments) == 301
    store.save_assessment(assessment(1000))  # the parent's pool was not disturbed by the children
    assert store.get_assessment("assessment-1000") is not None
