"""FHIR dates, partial or full, read as the span of days they could mean.

A FHIR date or dateTime may be a year (`2024`), a month (`2024-05`), a day, or an instant with a zone.
Each is read as the earliest and latest calendar day it could fall on:
- a partial date spans its whole year or month;
- an instant spans its own local day and its UTC day, because the evaluation date and the record's zone
  may differ by a day.
Callers choose the conservative end: an episode's onset takes the earliest day (the longest the episode
could have lasted), and a window check ("within N days") takes the latest day so a record is not wrongly
excluded; age in completed years is certain only when both ends agree.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

_FHIR_DATE = re.compile(
    r"^(?P<year>[0-9]{4})(-(?P<month>[0-9]{2})(-(?P<day>[0-9]{2})"
    r"(T(?P<time>[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
)


@dataclass(frozen=True, slots=True)
class DateSpan:
    earliest: date
    latest: date
    text: str  # as written in the record

    def within_last(self, days: int, as_of: date) -> bool:
        """Whether the record could fall in the `days` days up to `as_of` (a later date also counts)."""
        return self.latest >= _window_start(as_of, days)


def plus_days(day: date, days: int) -> date:
    """`day` + `days`, held within the calendar: EHRs use 9999-12-31 as "no end date"."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


@lru_cache(maxsize=256)
def _window_start(as_of: date, days: int) -> date:
    # Asked for every dated candidate record with the same few windows: built once, not per record.
    return as_of - timedelta(days=days)


def parse_fhir_date(value: Any) -> DateSpan | None:
    """The span of days a FHIR date/dateTime/instant string could mean; None when it is not one."""
    if not isinstance(value, str):
        return None
    return _parse(value)


# A record repeats its dates (problem lists, daily vitals), and order-select and order-sign send the same
# record again: remembering recent strings skips the parse. DateSpan is immutable, so sharing is safe.
@lru_cache(maxsize=4096)
def _parse(value: str) -> DateSpan | None:
    if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
        # Fast path for the most common form, a full date (YYYY-MM-DD), without the regular expression.
        year, month, day = value[:4], value[5:7], value[8:]
        if year.isdigit() and month.isdigit() and day.isdigit():
            try:
                full = date(int(year), int(month), int(day))
            except ValueError:
                return None  # e.g. month 13, 30 February, year 0
            return DateSpan(full, full, value)
    match = _FHIR_DATE.match(value.strip())
    if match is None:
        return None
    try:
        year_number = int(match["year"])
        if match["month"] is None:
            return DateSpan(date(year_number, 1, 1), date(year_number, 12, 31), value)
        month_number = int(match["month"])
        if match["day"] is None:
            last_day = calendar.monthrange(year_number, month_number)[1]
            return DateSpan(
                date(year_number, month_number, 1), date(year_number, month_number, last_day), value
            )
        day_of = date(year_number, month_number, int(match["day"]))
        if match["time"] is None or match["zone"] is None:
            return DateSpan(day_of, day_of, value)
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        utc_day = instant.astimezone(UTC).date()
    except (ValueError, OverflowError):
        return None  # e.g. month 13, 30 February, year 0
    return DateSpan(min(day_of, utc_day), max(day_of, utc_day), value)


def completed_years(born: date, on: date) -> int:
    """Age in completed years on a day (a 29 February birthday completes a year on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def days_between(start: date, end: date) -> int:
    return (end - start).days
