"""The red-flag questions in the store, on SQLite and PostgreSQL: a link kept with its assessment, answers
accepted once (across workers), kept findings dropped when answered or expired, counted in reports, and
deleted with the assessment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from service.store import AnswersRecord, AnswersSource, QuestionLink, Store
from tests.store.builders import START, ManualClock, all_text_in_database, assessment, run_together

LIFETIME = timedelta(minutes=30)
VERDICT_V1 = {
    "orders": [
        {
            "order": "ServiceRequest/1",
            "appropriateness": "usually-not-appropriate",
            "pamaRating": None,
            "urgent": False,
        }
    ],
    "variants": ["V1"],
    "redFlags": [],
    "uncheckedRedFlags": ["fever"],
}
VERDICT_V7 = {
    "orders": [
        {
            "order": "ServiceRequest/1",
            "appropriateness": "usually-appropriate",
            "pamaRating": "appropriate",
            "urgent": False,
        }
    ],
    "variants": ["V7"],
    "redFlags": ["fever"],
    "uncheckedRedFlags": [],
}


def _link(number: int) -> QuestionLink:
    created = START + timedelta(minutes=number)
    return QuestionLink(
        assessment_id=f"assessment-{number}",
        created_at=created,
        expires_at=created + LIFETIME,
        asked=("fever", "unexplained-weight-loss"),
        findings={"version": 1, "marker": "kept-findings-marker"},
    )


def _link_row(store: Store, assessment_id: str) -> dict[str, Any]:
    row = store.question_link(assessment_id)
    assert row is not None
    return row


def _record(store: Store, assessment_id: str) -> dict[str, Any]:
    record = store.get_assessment(assessment_id)
    assert record is not None
    return record


def _answers(number: int, after: dict[str, Any], *, minutes: int = 5) -> AnswersRecord:
    return AnswersRecord(
        assessment_id=f"assessment-{number}",
        answered_at=START + timedelta(minutes=number + minutes),
        source=AnswersSource.QUESTIONS_PAGE,
        answers=(("fever", "yes"),),
        verdict_before=VERDICT_V1,
        verdict_after=after,
        rules_version="acr-lbp-2021.1",
    )


def test_answers_are_kept_with_both_verdicts_and_the_findings_are_dropped(store: Store, database_url: str):
    store.save_assessment(assessment(1), question_link=_link(1))
    assert _link_row(store, "assessment-1")["findings"]["marker"] == "kept-findings-marker"

    assert store.save_answers(_answers(1, VERDICT_V7)) is True

    link = _link_row(store, "assessment-1")
    assert link["findings"] is None
    assert link["answered_at"] == START + timedelta(minutes=6)
    record = _record(store, "assessment-1")
    assert record["questions"]["asked"] == ["fever", "unexplained-weight-loss"]
    assert record["answers"]["verdictBefore"] == VERDICT_V1
    assert record["answers"]["verdictAfter"] == VERDICT_V7
    assert record["answers"]["changed"] is True
    assert record["answers"]["answers"] == [{"redFlag": "fever", "answer": "yes"}]
    assert "kept-findings-marker" not in all_text_in_database(database_url)


def test_answers_are_accepted_once_even_from_workers_at_the_same_moment(
    open_store: Callable[..., Store],
):
    first = open_store()
    first.save_assessment(assessment(1), question_link=_link(1))
    workers = [open_store() for _ in range(4)]
    results: list[bool] = []

    def answer(worker: Store) -> Callable[[], None]:
        return lambda: results.append(worker.save_answers(_answers(1, VERDICT_V7)))

    errors = run_together([answer(worker) for worker in workers])

    assert errors == []
    assert sorted(results) == [False, False, False, True]


def test_an_expired_link_takes_no_answers_and_loses_its_findings(store: Store, clock: ManualClock):
    store.save_assessment(assessment(1), question_link=_link(1))

    assert store.save_answers(_answers(1, VERDICT_V7, minutes=31)) is False
    clock.now = START + timedelta(hours=2)
    store.save_assessment(assessment(2), question_link=_link(2))  # a later write sweeps expired findings

    assert _link_row(store, "assessment-1")["findings"] is None
    assert "answers" not in _record(store, "assessment-1")


def test_reports_count_questions_offered_answered_and_changing_the_verdict(store: Store):
    store.save_assessment(assessment(1), question_link=_link(1))
    store.save_assessment(assessment(2), question_link=_link(2))
    store.save_assessment(assessment(3), question_link=_link(3))
    store.save_answers(_answers(1, VERDICT_V7))
    store.save_answers(_answers(2, {**VERDICT_V1, "uncheckedRedFlags": []}))  # settled, same verdict
    evaluate = AnswersRecord(
        assessment_id="assessment-4",
        answered_at=START + timedelta(minutes=4),
        source=AnswersSource.EVALUATE,
        answers=(("fever", "no"),),
        verdict_before=VERDICT_V1,
        verdict_after=VERDICT_V1,
        rules_version="acr-lbp-2021.1",
    )
    store.save_assessment(assessment(4, service_id="evaluate"), answers=evaluate)

    summary = store.summary(START, START + timedelta(days=1))

    assert summary["questions"] == {
        "offered": 3,
        "answered": 3,
        "answeredBySource": {"questions-page": 2, "evaluate": 1},
        "answerRate": 0.6667,
        "changedVerdict": 1,
        "changedVerdictRate": 0.3333,
    }


def test_purging_an_assessment_deletes_its_questions_and_answers(store: Store):
    store.save_assessment(assessment(1), question_link=_link(1))
    store.save_answers(_answers(1, VERDICT_V7))

    store.purge_older_than(START + timedelta(days=1))

    assert store.get_assessment("assessment-1") is None
    assert store.question_link("assessment-1") is None
