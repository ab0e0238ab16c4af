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
        return self.latest >= as_of - timedelta(days=days)


def parse_fhir_date(value: Any) -> DateSpan | None:
    """The span of days a FHIR date/dateTime/instant string could mean; None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _FHIR_DATE.match(value.strip())
    if match is None:
        return None
    try:
        year = int(match["year"])
        if match["month"] is None:
            return DateSpan(date(year, 1, 1), date(year, 12, 31), value)
        month = int(match["month"])
        if match["day"] is None:
            last_day = calendar.monthrange(year, month)[1]
            return DateSpan(date(year, month, 1), date(year, month, last_day), value)
        day = date(year, month, int(match["day"]))
        if match["time"] is None or match["zone"] is None:
            return DateSpan(day, day, value)
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        utc_day = instant.astimezone(UTC).date()
    except (ValueError, OverflowError):
        return None  # e.g. month 13, 30 February, year 0
    return DateSpan(min(day, utc_day), max(day, utc_day), value)


def completed_years(born: date, on: date) -> int:
    """Age in completed years on a day (a 29 February birthday completes a year on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def days_between(start: date, end: date) -> int:
    return (end - start).days
