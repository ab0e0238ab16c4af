"""The current low back pain episode, conservative therapy, and the data gaps around them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fhir_mappings import findings
from fhir_mappings.model import InputKind
from tests.support.fhir_records import (
    AS_OF,
    SNOMED,
    condition,
    full_record,
    procedure,
    service_request,
)


@pytest.mark.parametrize(
    ("onset_days", "symptom_days"),
    [(41, 41), (43, 43)],  # either side of six weeks (42 days): the rules decide, the mapping measures
)
def test_symptom_days_from_onset(onset_days: int, symptom_days: int) -> None:
    result = findings(full_record(conditions=[condition("M54.50", onset=onset_days)]), [], AS_OF)
    assert result.episode.active
    assert result.episode.onset == AS_OF - timedelta(days=onset_days)
    assert result.episode.symptom_days == symptom_days


@pytest.mark.parametrize(
    "code",
    ["M54.50", "M5450", "M54.5", "M54.59", "M54.51", "M48.062", "M51.362", "M54.16", "M54.42"],
)
def test_low_back_pain_codes_with_and_without_dot_and_grown_children(code: str) -> None:
    assert findings(full_record(conditions=[condition(code, onset=10)]), [], AS_OF).episode.active


@pytest.mark.parametrize("code", ["279039007", "278860009", "278862001", "161891005"])
def test_low_back_pain_snomed(code: str) -> None:
    assert findings(full_record(conditions=[condition(code, SNOMED, onset=10)]), [], AS_OF).episode.active


def test_resolved_old_episode_does_not_extend_the_current_one() -> None:
    old = condition("M54.50", onset=900, clinical="resolved")
    current = condition("M54.50", onset=20, id="now")
    episode = findings(full_record(conditions=[old, current]), [], AS_OF).episode
    assert episode.symptom_days == 20
    assert [evidence.reference for evidence in episode.evidence] == ["Condition/now"]


def test_onset_is_the_earliest_among_active_conditions() -> None:
    conditions = [condition("M54.50", onset=20), condition("278860009", SNOMED, onset=200)]
    assert findings(full_record(conditions=conditions), [], AS_OF).episode.symptom_days == 200


def test_partial_onset_takes_its_earliest_day() -> None:
    episode = findings(full_record(conditions=[condition("M54.50", onset="2026-09")]), [], AS_OF).episode
    assert episode.onset is not None
    assert episode.onset.isoformat() == "2026-09-01"
    assert episode.symptom_days == 86


def test_onset_period_start_and_recorded_date_fallback() -> None:
    by_period = condition("M54.50", onsetPeriod={"start": "2026-10-01"})
    by_recorded = condition("M54.50", recorded=15)
    assert findings(full_record(conditions=[by_period]), [], AS_OF).episode.symptom_days == 56
    assert findings(full_record(conditions=[by_recorded]), [], AS_OF).episode.symptom_days == 15


def test_refuted_low_back_pain_is_not_an_episode() -> None:
    refuted = condition("M54.50", onset=10, verification="refuted")
    result = findings(full_record(conditions=[refuted]), [], AS_OF)
    assert not result.episode.active
    assert "no-active-low-back-pain" in [gap.id for gap in result.data_gaps]


def test_undated_episode_is_active_with_unknown_duration() -> None:
    result = findings(full_record(conditions=[condition("M54.50")]), [], AS_OF)
    assert result.episode.active
    assert result.episode.onset is None
    assert result.episode.symptom_days is None
    assert "episode-onset-unknown" in [gap.id for gap in result.data_gaps]


def test_conditions_not_supplied_is_a_gap_not_an_absent_episode() -> None:
    result = findings(full_record(missing=[InputKind.CONDITIONS]), [], AS_OF)
    assert not result.episode.active
    (gap,) = [gap for gap in result.data_gaps if gap.id == "conditions-not-supplied"]
    assert "episode" in gap.affects
    assert "cancer-history" in gap.affects
    assert "no-active-low-back-pain" not in [gap.id for gap in result.data_gaps]


# ---- Conservative therapy -------------------------------------------------------------------------

EPISODE = condition("M54.50", onset=60)


@pytest.mark.parametrize(
    ("record_kwargs", "documented"),
    [
        pytest.param({"procedures": [procedure("97110", performed=30)]}, True, id="PT exercise in episode"),
        pytest.param({"procedures": [procedure("97110", performed=60)]}, True, id="PT on onset day"),
        pytest.param({"procedures": [procedure("97110", performed=61)]}, False, id="PT before onset"),
        pytest.param({"procedures": [procedure("98941", performed=5)]}, True, id="chiropractic manipulation"),
        pytest.param({"procedures": [procedure("97162", status="in-progress")]}, True, id="PT in progress"),
        pytest.param({"procedures": [procedure("97110", status="not-done")]}, False, id="PT not done"),
        pytest.param({"procedures": [procedure("91251008", SNOMED)]}, True, id="PT SNOMED"),
        pytest.param({"procedures": [procedure("97110", performed=None)]}, False, id="undated PT"),
        pytest.param({"service_requests": [service_request("97161")]}, True, id="PT referral active"),
        pytest.param(
            {"service_requests": [service_request("97161", status="completed")]}, True, id="completed"
        ),
        pytest.param({"service_requests": [service_request("97161", status="draft")]}, False, id="draft"),
        pytest.param({"service_requests": [service_request("97161", status="revoked")]}, False, id="revoked"),
        pytest.param({"procedures": [procedure("20610")]}, False, id="joint injection is not PT"),
    ],
)
def test_conservative_therapy_in_the_episode(record_kwargs: dict[str, Any], documented: bool) -> None:
    therapy = findings(full_record(conditions=[EPISODE], **record_kwargs), [], AS_OF).therapy
    assert therapy.documented is documented
    assert bool(therapy.evidence) is documented


def test_therapy_needs_an_episode() -> None:
    result = findings(full_record(procedures=[procedure("97110", performed=5)]), [], AS_OF)
    assert not result.therapy.documented


def test_missing_procedures_and_referrals_are_therapy_gaps() -> None:
    record = full_record(conditions=[EPISODE], missing=[InputKind.PROCEDURES, InputKind.SERVICE_REQUESTS])
    gaps = {gap.id: gap for gap in findings(record, [], AS_OF).data_gaps}
    assert "therapy" in gaps["procedures-not-supplied"].affects
    assert gaps["service-requests-not-supplied"].affects == ("therapy",)
