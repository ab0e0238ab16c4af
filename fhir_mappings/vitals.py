"""Observations -> fever (body temperature) and unexplained weight loss (body weight).

Observation statuses entered-in-error and cancelled are ignored; preliminary readings count, because a
clinician acts on a preliminary vital sign and a red flag must not wait for the record to be finalised.
A reading whose unit is missing or unknown, or whose value is physiologically implausible, is not used:
it becomes a data-quality note and leaves the flag unknown rather than absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_mappings.collect import Collector, Problem, evidence_for
from fhir_mappings.criteria import (
    BODY_TEMPERATURE,
    BODY_WEIGHT,
    FEVER_MIN_CELSIUS,
    FEVER_WINDOW_DAYS,
    PLAUSIBLE_CELSIUS,
    PLAUSIBLE_KILOGRAMS,
    WEIGHT_LOSS_MIN_FRACTION,
    WEIGHT_LOSS_WINDOW_DAYS,
)
from fhir_mappings.fhirdates import DateSpan, days_between, parse_fhir_date
from fhir_mappings.fhirjson import Coding, Resource, as_text, child, resource_type, status_of
from fhir_mappings.model import InputKind
from fhir_mappings.terminology import code_index

IGNORED_STATUS = frozenset({"entered-in-error", "cancelled"})
UCUM = "http://unitsofmeasure.org"
FEVER = ("fever",)
WEIGHT_LOSS = ("unexplained-weight-loss",)

# Unit (UCUM code, or the unit text some systems send instead) -> its symbol in evidence, which a
# clinician reads: "38.4 °C", "101.5 °F", "180 lb", not the UCUM codes "Cel", "[degF]", "[lb_av]".
CELSIUS, FAHRENHEIT = "°C", "°F"
_TEMPERATURE_SYMBOLS: dict[str, str] = {
    **dict.fromkeys(("cel", "°c", "c", "degc", "celsius"), CELSIUS),
    **dict.fromkeys(("[degf]", "°f", "f", "degf", "fahrenheit"), FAHRENHEIT),
}
_POUND = Decimal("0.45359237")  # international avoirdupois pound in kg, exact
# Unit -> (kilograms per unit, symbol in evidence).
_WEIGHT_UNITS: dict[str, tuple[Decimal, str]] = {
    "kg": (Decimal(1), "kg"),
    "g": (Decimal("0.001"), "g"),
    **dict.fromkeys(("[lb_av]", "lb", "lbs"), (_POUND, "lb")),
}


@dataclass(frozen=True, slots=True)
class Reading:
    resource: Resource
    coding: Coding
    when: DateSpan
    value: Decimal  # in the unit as written
    symbol: str  # the unit as written, shown as a clinician reads it (°C, °F, kg, g, lb)
    normalized: Decimal  # Cel or kg

    @property
    def shown(self) -> str:
        """The reading as the record gives it: never converted, so evidence holds only the record's value."""
        return f"{self.value} {self.symbol}"


def _quantity(observation: Resource) -> tuple[Decimal, str | None] | None:
    """The valueQuantity's value and unit key (UCUM code, else unit text), lower-cased."""
    quantity: Any = observation.get("valueQuantity")
    value = child(quantity, "value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    system = as_text(quantity.get("system"))  # `value` was found: `quantity` is an object
    code = as_text(quantity.get("code"))
    unit = code if code and system in (None, UCUM) else as_text(quantity.get("unit"))
    return number, unit.strip().lower() if unit else None


def _celsius(value: Decimal, unit: str) -> tuple[Decimal, str] | None:
    """(degrees Celsius, unit symbol), or None for a unit that is not a known temperature unit."""
    symbol = _TEMPERATURE_SYMBOLS.get(unit)
    if symbol is None:
        return None
    return (value if symbol == CELSIUS else (value - 32) * 5 / 9), symbol


def _kilograms(value: Decimal, unit: str) -> tuple[Decimal, str] | None:
    """(kilograms, unit symbol), or None for a unit that is not a known mass unit."""
    known = _WEIGHT_UNITS.get(unit)
    return None if known is None else (value * known[0], known[1])


def _reading(
    observation: Resource, coding: Coding, when: DateSpan, collector: Collector, temperature: bool
) -> Reading | None:
    flags = FEVER if temperature else WEIGHT_LOSS
    quantity = _quantity(observation)
    if quantity is None:
        return None  # no value (e.g. dataAbsentReason): not a reading
    value, unit = quantity
    converted = None if unit is None else (_celsius if temperature else _kilograms)(value, unit)
    if converted is None:
        collector.validator.note(observation, "measurement without a known unit; not used")
        collector.cannot_use(observation, Problem.UNIT, InputKind.OBSERVATIONS, flags)
        return None
    normalized, symbol = converted
    low, high = PLAUSIBLE_CELSIUS if temperature else PLAUSIBLE_KILOGRAMS
    if not low <= normalized <= high:
        collector.validator.note(observation, "measurement outside the physiological range; not used")
        collector.cannot_use(observation, Problem.IMPLAUSIBLE, InputKind.OBSERVATIONS, flags)
        return None
    return Reading(observation, coding, when, value, symbol, normalized)


def _effective(observation: Resource) -> DateSpan | None:
    effective = parse_fhir_date(observation.get("effectiveDateTime")) or parse_fhir_date(
        observation.get("effectiveInstant")
    )
    if effective is not None:
        return effective
    # A period: its end if known (the latest reading time), else its start.
    return parse_fhir_date(child(observation, "effectivePeriod", "end")) or parse_fhir_date(
        child(observation, "effectivePeriod", "start")
    )


def observation_findings(observations: Sequence[Resource], collector: Collector) -> None:
    """Readings in their window are read raw; only the ones that become evidence are validated."""
    index = code_index(BODY_TEMPERATURE, BODY_WEIGHT)
    weights: list[Reading] = []
    for observation in observations:
        if resource_type(observation) != "Observation" or status_of(observation) in IGNORED_STATUS:
            continue
        for coding in collector.codings_of(observation):
            matched = index.matching(coding[0], coding[1])
            if not matched:
                continue
            temperature = BODY_TEMPERATURE in matched
            window = FEVER_WINDOW_DAYS if temperature else WEIGHT_LOSS_WINDOW_DAYS
            flags = FEVER if temperature else WEIGHT_LOSS
            when = collector.in_window(
                observation, _effective(observation), window, InputKind.OBSERVATIONS, flags
            )
            reading = None if when is None else _reading(observation, coding, when, collector, temperature)
            if reading is None:
                pass
            elif not temperature:
                weights.append(reading)
            elif reading.normalized >= FEVER_MIN_CELSIUS and collector.usable(
                observation, InputKind.OBSERVATIONS, FEVER
            ):
                collector.add(FEVER[0], evidence_for(observation, coding, when, reading.shown))
            break  # one coding decides what an Observation is
    _weight_loss(weights, collector)


def _loss_pair(weights: list[Reading]) -> tuple[Reading, Reading, Decimal] | None:
    """The first weight 5% or more below the heaviest certainly earlier weight, with the drop."""
    for position, later in enumerate(weights):
        earlier = [reading for reading in weights[:position] if reading.when.latest < later.when.earliest]
        if not earlier:
            continue
        heaviest = max(earlier, key=lambda reading: reading.normalized)
        drop = (heaviest.normalized - later.normalized) / heaviest.normalized
        if drop >= WEIGHT_LOSS_MIN_FRACTION:
            return heaviest, later, drop
    return None


def _interval(earlier: Reading, later: Reading) -> str:
    """Days between two readings; a range when a partial date (or a zone) leaves the days uncertain."""
    shortest = days_between(earlier.when.latest, later.when.earliest)
    longest = days_between(earlier.when.earliest, later.when.latest)
    return f"{shortest} days" if shortest == longest else f"{shortest} to {longest} days"


def _weight_loss(weights: list[Reading], collector: Collector) -> None:
    """Finds a losing pair on the raw readings, then validates just that pair (dropping any that fail)."""
    weights.sort(key=lambda reading: (reading.when.earliest, reading.when.latest, reading.when.text))
    while (pair := _loss_pair(weights)) is not None:
        heaviest, later, drop = pair
        invalid = [
            r
            for r in (heaviest, later)
            if not collector.usable(r.resource, InputKind.OBSERVATIONS, WEIGHT_LOSS)
        ]
        if invalid:
            weights = [reading for reading in weights if all(reading is not bad for bad in invalid)]
            continue
        # The mappings cannot know why the weight fell: the detail says so rather than "unexplained".
        detail = (
            f"{heaviest.shown} -> {later.shown} (-{drop * 100:.1f}%) in {_interval(heaviest, later)}, "
            "cause not recorded"
        )
        flag = WEIGHT_LOSS[0]
        collector.add(flag, evidence_for(heaviest.resource, heaviest.coding, heaviest.when, heaviest.shown))
        collector.add(flag, evidence_for(later.resource, later.coding, later.when, detail))
        return
