"""FHIR dates read as spans of possible days; completed years."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.fhirdates import completed_years, parse_fhir_date


@pytest.mark.parametrize(
    ("text", "earliest", "latest"),
    [
        ("2024", date(2024, 1, 1), date(2024, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023-02", date(2023, 2, 1), date(2023, 2, 28)),
        ("2024-05-03", date(2024, 5, 3), date(2024, 5, 3)),
        ("2024-05-03T10:00:00", date(2024, 5, 3), date(2024, 5, 3)),
        ("2024-05-03T10:00:00Z", date(2024, 5, 3), date(2024, 5, 3)),
        ("2024-05-03T23:30:00-05:00", date(2024, 5, 3), date(2024, 5, 4)),  # already 4 May in UTC
        ("2024-05-03T01:00:00+10:00", date(2024, 5, 2), date(2024, 5, 3)),  # still 2 May in UTC
        ("2024-05-03T10:00:00.123+02:00", date(2024, 5, 3), date(2024, 5, 3)),
    ],
)
def test_spans(text: str, earliest: date, latest: date) -> None:
    span = parse_fhir_date(text)
    assert span is not None
    assert (span.earliest, span.latest, span.text) == (earliest, latest, text)


@pytest.mark.parametrize(
    "text", ["2024-13", "2024-02-30", "0000", "24-05-03", "yesterday", "", None, 20240503, []]
)
def test_not_dates(text: object) -> None:
    assert parse_fhir_date(text) is None


def test_window_uses_the_latest_possible_day() -> None:
    span = parse_fhir_date("2024-04")
    assert span is not None
    assert span.within_last(30, date(2024, 5, 30))  # 30 April is 30 days back
    assert not span.within_last(29, date(2024, 5, 30))


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [
        (date(1976, 11, 26), date(2026, 11, 26), 50),
        (date(1976, 11, 27), date(2026, 11, 26), 49),
        (date(2000, 2, 29), date(2026, 2, 28), 25),
        (date(2000, 2, 29), date(2026, 3, 1), 26),
    ],
)
def test_completed_years(born: date, on: date, years: int) -> None:
    assert completed_years(born, on) == years
