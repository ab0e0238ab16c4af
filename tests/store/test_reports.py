"""The summary report against a hand count, and the report period parsing shared by API and CLI."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.store import ReportWindowError, Store, format_summary, report_window
from service.store.records import OverrideReason
from tests.store.builders import (
    OVERRIDE_SYSTEM,
    START,
    ManualClock,
    accepted,
    assessment,
    order,
    overridden,
)

SIGN, SELECT = "lbp-imaging-order-sign", "lbp-imaging-order-select"
ISS = "https://ehr.example.org"
DAY = timedelta(days=1)
NOT_APPROPRIATE, APPROPRIATE, MAYBE = "usually-not-appropriate", "usually-appropriate", "may-be-appropriate"


def _reason(code: str, display: str) -> OverrideReason:
    return OverrideReason(system=OVERRIDE_SYSTEM, code=code, display=display)


def _fill(store: Store, clock: ManualClock) -> None:
    """Four assessments in [START, START + 1 day), two outside it, and feedback on them."""
    store.save_assessment(assessment(1, latency_ms=10, variants=("v1",), orders=(order(1),)))
    store.save_assessment(
        assessment(
            2,
            latency_ms=20,
            variants=("v2", "v3"),
            red_flags=("cancer-history", "age-over-50"),
            unchecked_red_flags=(),
            urgent=True,
            orders=(
                order(2, appropriateness=APPROPRIATE, pama_rating="appropriate"),
                order(3, modality="XR", procedure="xr-lumbar"),
            ),
        )
    )
    store.save_assessment(
        assessment(
            3,
            service_id=SELECT,
            latency_ms=30,
            variants=("v1",),
            unchecked_red_flags=(),
            data_gaps=(),
            orders=(
                order(4, modality="CT", procedure="ct-lumbar", appropriateness=MAYBE, pama_rating=None),
                order(5, modality="XR", procedure="xr-lumbar", appropriateness=APPROPRIATE, card_uuid=None),
            ),
        )
    )
    store.save_assessment(assessment(4, latency_ms=40, variants=("v1",), orders=(order(6),)))
    # Outside the period: an hour before it, and exactly at its (exclusive) end.
    store.save_assessment(assessment(5, created_at=START - timedelta(hours=1), orders=(order(7),)))
    store.save_assessment(assessment(6, created_at=START + DAY, orders=(order(8),)))

    t = START + timedelta(hours=2)
    clock.now = t
    store.save_feedback(
        SIGN,
        [
            overridden("card-1", t, "patient-preference"),  # superseded by the later acceptance
            accepted("card-1", t + timedelta(minutes=1)),
            overridden("card-3", t, "disagree"),
            replace(
                overridden("card-6", t), override_reason=_reason("patient-preference", "Patient prefers")
            ),
            replace(
                overridden("card-6", t + timedelta(minutes=1)),
                override_reason=_reason("patient-preference", "Patient preference"),
            ),
            accepted("card-7", t),  # its assessment is outside the period
            accepted("card-8", t),
            overridden("ghost-card", t),  # unknown card, received in the period
        ],
        client_iss=ISS,
    )
    store.save_feedback(SELECT, [overridden("card-4", t)], client_iss=ISS)  # no reason given
    clock.now = START + 2 * DAY
    store.save_feedback(SIGN, [overridden("late-ghost", t)], client_iss=ISS)  # received after the period


def test_summary_matches_a_hand_count(store: Store, clock: ManualClock) -> None:
    _fill(store, clock)

    assert store.summary(START, START + DAY) == {
        "from": "2026-03-01T09:00:00Z",
        "to": "2026-03-02T09:00:00Z",
        "assessments": 4,
        "urgentAssessments": 1,
        "orders": 6,
        "byService": {SIGN: 3, SELECT: 1},
        "byAppropriateness": {NOT_APPROPRIATE: 3, APPROPRIATE: 2, MAYBE: 1},
        "byPamaRating": {"not-appropriate": 4, "appropriate": 1, "none": 1},
        "byModality": {"MRI": 3, "XR": 2, "CT": 1},
        "byProcedure": {"mri-lumbar-without-contrast": 3, "xr-lumbar": 2, "ct-lumbar": 1},
        "byVariant": {"v1": 3, "v2": 1, "v3": 1},
        "byRedFlag": {"age-over-50": 1, "cancer-history": 1},
        "byUncheckedRedFlag": {"fever": 2},
        "byDataGap": {"observations-not-supplied": 3},
        "cards": {
            "shown": 5,
            "withFeedback": 4,
            "accepted": 1,
            "overridden": 3,
            "feedbackRate": 0.8,
            "acceptanceRate": 0.25,
            "overrideRate": 0.75,
        },
        "cardsByAppropriateness": {
            MAYBE: {
                "shown": 1,
                "withFeedback": 1,
                "accepted": 0,
                "overridden": 1,
                "feedbackRate": 1.0,
                "acceptanceRate": 0.0,
                "overrideRate": 1.0,
            },
            APPROPRIATE: {
                "shown": 1,
                "withFeedback": 0,
                "accepted": 0,
                "overridden": 0,
                "feedbackRate": 0.0,
                "acceptanceRate": None,
                "overrideRate": None,
            },
            NOT_APPROPRIATE: {
                "shown": 3,
                "withFeedback": 3,
                "accepted": 1,
                "overridden": 2,
                "feedbackRate": 1.0,
                "acceptanceRate": 0.3333,
                "overrideRate": 0.6667,
            },
        },
        "overrideReasons": [
            {"system": OVERRIDE_SYSTEM, "code": "disagree", "display": "Reason disagree", "count": 1},
            {
                "system": OVERRIDE_SYSTEM,
                "code": "patient-preference",
                "display": "Patient preference",
                "count": 1,
            },
        ],
        "overridesWithoutReason": 1,
        "questions": {
            "offered": 0,
            "answered": 0,
            "answeredBySource": {},
            "answerRate": None,
            "changedVerdict": 0,
            "changedVerdictRate": None,
        },
        "feedbackOnUnknownCards": 1,
        "latencyMs": {"median": 20.0, "p95": 40.0, "max": 40.0},
    }


def test_an_empty_period_has_zero_counts_and_no_rates(store: Store, clock: ManualClock) -> None:
    _fill(store, clock)
    summary = store.summary(START + 10 * DAY, START + 11 * DAY)
    assert summary["assessments"] == summary["orders"] == 0
    assert summary["cards"]["acceptanceRate"] is None
    assert summary["cards"]["feedbackRate"] is None
    assert summary["latencyMs"] is None
    assert summary["overrideReasons"] == []


def test_the_table_shows_the_numbers(store: Store, clock: ManualClock) -> None:
    _fill(store, clock)
    table = format_summary(store.summary(START, START + DAY))
    assert "Assessments from 2026-03-01T09:00:00Z to 2026-03-02T09:00:00Z" in table
    assert ("assessments", "4") in _label_value(table)
    assert ("usually-not-appropriate", "3") in _label_value(table)
    assert ("all cards", "5 / 4 / 1 / 3  (25.0%, 75.0%)") in _label_value(table)
    assert ("usually-appropriate", "1 / 0 / 0 / 0  (-, -)") in _label_value(table)
    assert ("Patient preference [patient-preference]", "1") in _label_value(table)
    assert ("no reason given", "1") in _label_value(table)


def _label_value(table: str) -> list[tuple[str, str]]:
    """(label, value) of each table row: two spaces of indent, two or more spaces between."""
    found = []
    for line in table.splitlines():
        match = re.fullmatch(r"  (\S.*?) {2,}(\S.*)", line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


NOW = datetime(2026, 5, 20, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (NOW - timedelta(days=30), NOW)),
        ("2026-05-01", "2026-05-31", (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))),
        (
            "2026-05-01T08:00:00+02:00",
            "2026-05-01T12:00:00Z",
            (datetime(2026, 5, 1, 6, tzinfo=UTC), datetime(2026, 5, 1, 12, tzinfo=UTC)),
        ),
        ("2026-05-01T08:00:00", None, (datetime(2026, 5, 1, 8, tzinfo=UTC), NOW)),  # no offset: UTC
        (None, "2026-05-10", (datetime(2026, 4, 11, tzinfo=UTC), datetime(2026, 5, 11, tzinfo=UTC))),
    ],
)
def test_report_window(start: str | None, end: str | None, expected: tuple[datetime, datetime]) -> None:
    assert report_window(start, end, now=NOW) == expected


@pytest.mark.parametrize(
    ("start", "end", "parameter", "message"),
    [
        ("yesterday", None, "from", "from must be an ISO date (2024-05-01) or date-time"),
        (None, "2026-13-01", "to", "to must be an ISO date"),
        (
            "2026-05-02",
            "2026-05-01",
            "from",
            "from (2026-05-02T00:00:00Z) must be before to (2026-05-02T00:00:00Z)",
        ),
    ],
)
def test_report_window_refuses_bad_bounds(
    start: str | None, end: str | None, parameter: str, message: str
) -> None:
    with pytest.raises(ReportWindowError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        report_window(start, end, now=NOW)
    assert caught.value.parameter == parameter
