"""The CMS166v7 (NQF 0052) quality measure "Use of Imaging Studies for Low Back Pain", from the same
export: its populations, exclusions and windows are data (`knowledge/cms166v7.json`, value sets copied
with their OIDs); this module only applies them. What the project does differently from the measure is
stated in that file's `differences`, and the report repeats it.

A patient is evaluated for each year in which they have a low back pain diagnosis in the intake period
(1 January - 3 December); the index date (IPSD) is the first such diagnosis of the year.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

from fhir_mappings.fhirjson import child, codings, concept_codes
from fhir_mappings.orders import lumbar_imaging_coding
from service.audit.judge import NOT_AN_ORDER, calendar_day, field_text, resource_date
from service.audit.reader import Line

DEFINITION = Path(__file__).with_name("knowledge") / "cms166v7.json"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
_IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class Measure:
    definition: Mapping[str, Any]
    codes: Mapping[str, Mapping[str, frozenset[str]]]  # role -> system -> codes (ICD-10-CM without dots)

    def matches(self, role: str, concept: Any) -> bool:
        systems = self.codes.get(role, {})
        for system, code, _ in codings(concept):
            if code is None or system is None or system not in systems:
                continue
            listed = systems[system]
            if system == ICD10:
                plain = code.replace(".", "").upper()
                # A 2017 code also matches its later children (M545 -> M5450): test each prefix.
                if any(plain[:length] in listed for length in range(3, len(plain) + 1)):
                    return True
            elif code in listed:
                return True
        return False


@cache
def load_measure(path: Path = DEFINITION) -> Measure:
    definition = json.loads(path.read_text(encoding="utf-8"))
    codes: dict[str, dict[str, set[str]]] = {}
    for value_set in definition["valueSets"]:
        for system, listed in value_set["codes"].items():
            codes.setdefault(value_set["role"], {}).setdefault(system, set()).update(listed)
    frozen = {
        role: {system: frozenset(listed) for system, listed in systems.items()}
        for role, systems in codes.items()
    }
    return Measure(definition, frozen)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One patient in one measurement year."""

    year: int
    index_date: date
    initial_population: bool
    denominator: bool
    exclusion: str | None
    imaged_within_window: bool
    numerator: bool  # in the denominator and NOT imaged within the window (the measure's numerator)

    def as_json(self, patient: str) -> dict[str, Any]:
        return {
            "patient": patient,
            "year": self.year,
            "indexDate": self.index_date.isoformat(),
            "initialPopulation": self.initial_population,
            "denominator": self.denominator,
            "exclusion": self.exclusion,
            "imagedWithin28Days": self.imaged_within_window,
            "numerator": self.numerator,
        }


def _years_old(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _day(resource: Mapping[str, Any], kind: str) -> date | None:
    written = resource_date(resource, kind)
    return None if written is None else calendar_day(written)


def _condition_days(measure: Measure, lines: Iterable[Line], role: str) -> list[date]:
    days = []
    for line in lines:
        if line.kind != "Condition" or not measure.matches(role, line.resource.get("code")):
            continue
        if concept_codes(child(line.resource, "verificationStatus")) & _IGNORED_VERIFICATION:
            continue
        day = _day(line.resource, "Condition")
        if day is not None:
            days.append(day)
    return days


def _imaging_days(measure: Measure, lines: Iterable[Line]) -> list[date]:
    days = []
    for line in lines:
        resource = line.resource
        if line.kind == "ImagingStudy":
            concepts = resource.get("procedureCode")
            concepts = concepts if isinstance(concepts, list) else []
        elif line.kind in ("ServiceRequest", "Procedure"):
            if line.kind == "ServiceRequest" and resource.get("status") in NOT_AN_ORDER:
                continue
            concepts = [resource.get("code")]
        else:
            continue
        if any(measure.matches("imaging", c) or lumbar_imaging_coding({"code": c}) for c in concepts):
            day = _day(resource, line.kind)
            if day is not None:
                days.append(day)
    return days


def _steroid_days(measure: Measure, lines: Iterable[Line], start: date, end: date) -> int:
    """Days in [start, end] covered by a systemic corticosteroid (statements' periods, requests' supply)."""
    covered: set[date] = set()
    for line in lines:
        if line.kind not in ("MedicationRequest", "MedicationStatement"):
            continue
        if not measure.matches("corticosteroids", line.resource.get("medicationCodeableConcept")):
            continue
        first = _day(line.resource, line.kind)
        if first is None:
            continue
        last = first
        if line.kind == "MedicationStatement":
            ended = field_text(line.resource, ("effectivePeriod", "end"))
            last = (calendar_day(ended) if ended else None) or end
        else:
            supply = child(child(line.resource, "dispenseRequest"), "expectedSupplyDuration")
            value = child(supply, "value")
            if isinstance(value, int | float) and value > 0:
                last = first + timedelta(days=int(value) - 1)
        day = max(first, start)
        while day <= min(last, end):
            covered.add(day)
            day += timedelta(days=1)
    return len(covered)


def _hospice(measure: Measure, lines: Iterable[Line], start: date, end: date) -> bool:
    for line in lines:
        resource = line.resource
        concepts: Sequence[Any] = ()
        if line.kind in ("Procedure", "ServiceRequest"):
            concepts = [resource.get("code")]
        elif line.kind == "Encounter":
            types = resource.get("type")
            concepts = [
                *(types if isinstance(types, list) else []),
                child(child(resource, "hospitalization"), "dischargeDisposition"),
            ]
        if concepts and any(measure.matches("hospice", c) for c in concepts):
            day = _day(resource, line.kind)
            if day is None or start <= day <= end:
                return True
    return False


def _exclusion(measure: Measure, lines: Sequence[Line], index: date, start: date, end: date) -> str | None:
    definition = measure.definition
    window = timedelta(days=definition["numeratorWindowDays"])
    prior = timedelta(days=definition["priorLowBackPainDays"])
    if any(index - prior <= day < index for day in _condition_days(measure, lines, "low-back-pain")):
        return "recent-low-back-pain"
    for name, rule in definition["exclusions"].items():
        kind = rule["window"]
        if kind == "any-time":
            if any(day <= end for day in _condition_days(measure, lines, name)) or _procedure_on(
                measure, lines, name, None, end
            ):
                return str(name)
        elif kind == "around-index":
            low, high = index - timedelta(days=rule["daysBefore"]), index + window
            if any(low <= day <= high for day in _condition_days(measure, lines, name)):
                return str(name)
        elif kind == "days-supplied":
            low = index - timedelta(days=rule["daysBefore"])
            if _steroid_days(measure, lines, low, index) >= rule["minDays"]:
                return str(name)
        elif kind == "measurement-period" and _hospice(measure, lines, start, end):
            return str(name)
    return None


def _procedure_on(measure: Measure, lines: Iterable[Line], role: str, low: date | None, high: date) -> bool:
    """A Procedure in the role's value set (transplants are procedures as well as statuses)."""
    for line in lines:
        if line.kind == "Procedure" and measure.matches(role, line.resource.get("code")):
            day = _day(line.resource, "Procedure")
            if day is not None and (low is None or day >= low) and day <= high:
                return True
    return False


def evaluate(lines: Sequence[Line], measure: Measure | None = None) -> list[Outcome]:
    """The patient's outcome in each year with a low back pain diagnosis in its intake period."""
    measure = measure or load_measure()
    population = measure.definition["population"]
    diagnoses = sorted(_condition_days(measure, lines, "low-back-pain"))
    if not diagnoses:
        return []
    born = None
    for line in lines:
        if line.kind == "Patient":
            text = line.resource.get("birthDate")
            born = calendar_day(text) if isinstance(text, str) and len(text) == 10 else None
            break
    month, day_of_month = (int(part) for part in population["intakeEnds"].split("-"))
    outcomes = []
    for year in sorted({day.year for day in diagnoses}):
        start, end = date(year, 1, 1), date(year, 12, 31)
        intake = [day for day in diagnoses if start <= day <= date(year, month, day_of_month)]
        if not intake:
            continue
        index = intake[0]
        ages_ok = (
            born is not None
            and _years_old(born, start) >= population["ageAtStartMin"]
            and _years_old(born, end) <= population["ageAtEndMax"]
        )
        window = timedelta(days=measure.definition["numeratorWindowDays"])
        imaged = any(index <= day <= index + window for day in _imaging_days(measure, lines))
        exclusion = _exclusion(measure, lines, index, start, end) if ages_ok else None
        denominator = ages_ok and exclusion is None
        outcomes.append(
            Outcome(
                year=year,
                index_date=index,
                initial_population=ages_ok,
                denominator=denominator,
                exclusion=exclusion,
                imaged_within_window=imaged,
                numerator=denominator and not imaged,
            )
        )
    return outcomes


MEASURE_COLUMNS = (
    "patient",
    "year",
    "indexDate",
    "initialPopulation",
    "denominator",
    "exclusion",
    "imagedWithin28Days",
    "numerator",
)


class MeasureTally:
    """measure-patients.csv as outcomes arrive, and the counts per year and per month of index date."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(MEASURE_COLUMNS)
        self.years: dict[int, dict[str, Any]] = {}

    def write(self, outcomes: Iterable[Mapping[str, Any]]) -> None:
        for outcome in outcomes:
            self._csv.writerow(["" if outcome[c] is None else outcome[c] for c in MEASURE_COLUMNS])
            if not outcome["initialPopulation"]:
                continue
            year = self.years.setdefault(
                outcome["year"],
                {"initialPopulation": 0, "denominator": 0, "numerator": 0, "exclusions": {}, "byMonth": {}},
            )
            year["initialPopulation"] += 1
            month = year["byMonth"].setdefault(outcome["indexDate"][:7], {"denominator": 0, "numerator": 0})
            if outcome["exclusion"]:
                year["exclusions"][outcome["exclusion"]] = year["exclusions"].get(outcome["exclusion"], 0) + 1
                continue
            year["denominator"] += 1
            month["denominator"] += 1
            year["numerator"] += outcome["numerator"]
            month["numerator"] += outcome["numerator"]

    def close(self) -> None:
        self._file.close()

    def as_json(self, chosen: int | None) -> dict[str, Any]:
        definition = load_measure().definition
        years = {}
        for year in sorted(self.years):
            counts = self.years[year]
            rate = counts["numerator"] / counts["denominator"] if counts["denominator"] else None
            years[str(year)] = {
                **{k: counts[k] for k in ("initialPopulation", "denominator", "numerator")},
                "exclusions": dict(sorted(counts["exclusions"].items())),
                "rate": None if rate is None else round(rate, 4),
                "imagingRate": None if rate is None else round(1 - rate, 4),
                "byMonth": dict(sorted(counts["byMonth"].items())),
            }
        shown = chosen if chosen is not None else (max(self.years) if self.years else None)
        return {
            "id": definition["id"],
            "title": definition["title"],
            "measure": definition["measure"],
            "definition": definition["definition"],
            "definitionYear": definition["definitionYear"],
            "scoring": definition["scoring"],
            "differences": definition["differences"],
            "year": shown,
            "years": years,
            "file": "measure-patients.csv",
        }
