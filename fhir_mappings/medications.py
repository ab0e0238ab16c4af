"""MedicationRequests and MedicationStatements -> prolonged systemic corticosteroids, osteoporosis drugs.

Statuses entered-in-error, cancelled and not-taken are ignored, as is a request with doNotPerform.
The drug is the medicationCodeableConcept or the referenced Medication (contained, or `_include`d in the
record). Corticosteroids count when systemic (see the value set's note).

Coverage of a corticosteroid record, as days [start, end] (inclusive, partial dates widened so coverage
is not understated):
- MedicationStatement: effectivePeriod (an open end runs to the evaluation date); effectiveDateTime is one
  day, or runs to the evaluation date while the statement is active (the patient is taking it).
- MedicationRequest: from dispenseRequest.validityPeriod.start, else authoredOn, else the dosage's
  boundsPeriod.start; to the latest of: start + expectedSupplyDuration x (1 + numberOfRepeatsAllowed) - 1,
  validityPeriod.end, boundsPeriod.end, start + boundsDuration - 1 (an open period runs to the evaluation
  date); one day when none is given. Months count as 30 days, years as 365.
The union of all records' days in the last 365 days must reach 90.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_mappings.collect import Collector, Problem, evidence_for
from fhir_mappings.criteria import (
    OSTEOPOROSIS_DRUGS,
    STEROID_LOOKBACK_DAYS,
    STEROID_MIN_DAYS,
    SYSTEMIC_CORTICOSTEROIDS,
)
from fhir_mappings.fhirdates import DateSpan, parse_fhir_date, plus_days
from fhir_mappings.fhirjson import (
    Coding,
    Resource,
    as_list,
    as_text,
    child,
    codings,
    concept_text,
    reference_key,
    resource_id,
    resource_type,
    status_of,
)
from fhir_mappings.model import InputKind
from fhir_mappings.terminology import RXNORM, value_set

IGNORED_STATUS = frozenset({"entered-in-error", "cancelled", "not-taken"})
ORDER_TYPES = frozenset({"MedicationRequest", "MedicationStatement"})
STEROIDS = ("prolonged-corticosteroids",)
OSTEOPOROSIS = ("osteoporosis",)
_DAYS_PER_UNIT: Mapping[str, int] = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "year": 365,
    "years": 365,
}
Interval = tuple[date, date]


def _drug_concept(record: Resource, medications: Mapping[str, Resource]) -> Any:
    concept = record.get("medicationCodeableConcept")
    if concept is not None:
        return concept
    key = reference_key(record.get("medicationReference"))
    if key is None:
        return None
    if key.startswith("#"):
        contained = (item for item in as_list(record.get("contained")) if f"#{resource_id(item)}" == key)
        return child(next(contained, None), "code")
    return child(medications.get(key), "code")


def _dosage_text(record: Resource) -> str:
    """Routes and dosage text: where a non-systemic form (topical, inhaled...) is usually written."""
    parts: list[str] = []
    for dosage in as_list(record.get("dosageInstruction")) + as_list(record.get("dosage")):
        parts.append(concept_text(child(dosage, "route")))
        parts.append((as_text(child(dosage, "text")) or "").lower())
    return " ".join(parts)


def _matching_coding(concept: Any, codes: frozenset[str]) -> Coding | None:
    return next((c for c in codings(concept) if c[0] == RXNORM and c[1] in codes), None)


def _first_coding(concept: Any) -> Coding | None:
    coding = next(codings(concept), None)
    return coding or (None, None, as_text(child(concept, "text")))


def _days(duration: Any) -> int | None:
    value = child(duration, "value")
    unit = as_text(child(duration, "code")) or as_text(child(duration, "unit"))
    per_unit = _DAYS_PER_UNIT.get(unit.strip().lower()) if unit else None
    if per_unit is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        days = int(Decimal(str(value)) * per_unit)
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return days if 0 < days < 100 * 365 else None


def _period_end(period: Any, as_of: date) -> date | None:
    """The latest day of a Period; an open period (start, no end) runs to the evaluation date."""
    end = parse_fhir_date(child(period, "end"))
    if end is not None:
        return end.latest
    return as_of if parse_fhir_date(child(period, "start")) is not None else None


def _request_interval(request: Resource, as_of: date) -> tuple[Interval, DateSpan] | None:
    validity = child(request, "dispenseRequest", "validityPeriod")
    repeats = [child(dosage, "timing", "repeat") for dosage in as_list(request.get("dosageInstruction"))]
    bounds = [child(repeat, "boundsPeriod") for repeat in repeats if child(repeat, "boundsPeriod")]
    starts = [parse_fhir_date(child(validity, "start")), parse_fhir_date(request.get("authoredOn"))]
    starts += [parse_fhir_date(child(period, "start")) for period in bounds]
    start = next((span for span in starts if span is not None), None)
    if start is None:
        return None
    first = start.earliest
    ends = [first, _period_end(validity, as_of)] + [_period_end(period, as_of) for period in bounds]
    supply = _days(child(request, "dispenseRequest", "expectedSupplyDuration"))
    if supply is not None:
        refills = child(request, "dispenseRequest", "numberOfRepeatsAllowed")
        fills = 1 + (
            refills if isinstance(refills, int) and not isinstance(refills, bool) and refills > 0 else 0
        )
        ends.append(plus_days(first, supply * fills - 1))
    for repeat in repeats:
        length = _days(child(repeat, "boundsDuration"))
        if length is not None:
            ends.append(plus_days(first, length - 1))
    return (first, max(end for end in ends if end is not None)), start


def _statement_interval(statement: Resource, as_of: date) -> tuple[Interval, DateSpan] | None:
    start = parse_fhir_date(child(statement, "effectivePeriod", "start"))
    if start is not None:
        return (start.earliest, _period_end(child(statement, "effectivePeriod"), as_of) or as_of), start
    when = parse_fhir_date(statement.get("effectiveDateTime"))
    if when is None:
        return None
    return (when.earliest, as_of if status_of(statement) == "active" else when.latest), when


def _coverage(record: Resource, as_of: date) -> tuple[Interval, DateSpan] | None:
    if resource_type(record) == "MedicationRequest":
        return _request_interval(record, as_of)
    return _statement_interval(record, as_of)


def _covered_days(intervals: Sequence[Interval]) -> int:
    """Days covered by the union of inclusive intervals."""
    total = 0
    reached: date | None = None  # last day counted so far
    for start, end in sorted(intervals):
        if reached is not None and start <= reached:
            start = plus_days(reached, 1)
        if end >= start:
            total += (end - start).days + 1
            reached = end
    return total


def _is_taken(record: Resource) -> bool:
    return (
        resource_type(record) in ORDER_TYPES
        and status_of(record) not in IGNORED_STATUS
        and record.get("doNotPerform") is not True
    )


_Course = tuple[Resource, Coding | None, DateSpan, Interval]  # record, drug coding, its date, days counted


def _steroid_course(record: Resource, concept: Any, drug_text: str, collector: Collector) -> _Course | None:
    """A systemic corticosteroid record's days in the look-back window (validated), else None."""
    steroids = value_set(SYSTEMIC_CORTICOSTEROIDS)
    coded = _matching_coding(concept, steroids.codes.get(RXNORM, frozenset()))
    if coded is None and not steroids.names_in_text(f"{drug_text} {_dosage_text(record)}"):
        return None
    as_of = collector.as_of
    lookback_start = as_of - timedelta(days=STEROID_LOOKBACK_DAYS - 1)
    interval = _coverage(record, as_of)
    if interval is not None and interval[0][1] < lookback_start:
        return None  # ended before the look-back window: not validated
    if not collector.usable(record, InputKind.MEDICATIONS, STEROIDS):
        return None
    if interval is None:
        collector.cannot_use(record, Problem.UNDATED, InputKind.MEDICATIONS, STEROIDS)
        return None
    (start, end), when = interval
    clipped = (max(start, lookback_start), min(end, as_of))
    return (record, coded or _first_coding(concept), when, clipped) if clipped[0] <= clipped[1] else None


def medication_findings(medications: Sequence[Resource], collector: Collector) -> None:
    osteoporosis_drugs = value_set(OSTEOPOROSIS_DRUGS)
    drugs = {f"Medication/{resource_id(m)}": m for m in medications if resource_type(m) == "Medication"}
    courses: list[_Course] = []
    for record in medications:
        if not _is_taken(record):
            continue
        concept = _drug_concept(record, drugs)
        drug_text = concept_text(concept)
        if osteoporosis_drugs.names_in_text(drug_text) and collector.usable(
            record, InputKind.MEDICATIONS, OSTEOPOROSIS
        ):
            interval = _coverage(record, collector.as_of)
            when = interval[1] if interval else None
            collector.add(OSTEOPOROSIS[0], evidence_for(record, _first_coding(concept), when))
        course = _steroid_course(record, concept, drug_text, collector)
        if course is not None:
            courses.append(course)
    total = _covered_days([interval for *_, interval in courses])
    if total < STEROID_MIN_DAYS:
        return
    for record, coding, when, (start, end) in courses:
        detail = (
            f"{start.isoformat()} to {end.isoformat()} ({(end - start).days + 1} days); "
            f"{total} of the last {STEROID_LOOKBACK_DAYS} days with the other corticosteroid records"
        )
        collector.add(STEROIDS[0], evidence_for(record, coding, when, detail))
