"""The red-flag criteria: which value sets, statuses, windows and thresholds make each red flag present.

Clinical knowledge kept as data (`knowledge/red-flag-criteria.yaml`, each entry citing `sources.yaml`),
read and validated here once at import, apart from the code that applies it. A threshold or a window
changes in the data file, not in Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any, NoReturn, cast

from fhir_mappings.model import RED_FLAG_IDS, InputKind
from fhir_mappings.registry import CRITERIA_FILE, KnowledgeError, criteria_document, entries, source_ids, text
from fhir_mappings.terminology import ValueSetError, load_value_sets


class Timing(StrEnum):
    """When a Condition counts (refuted and entered-in-error Conditions never count)."""

    ACTIVE = "active"  # clinically active, whatever its date
    EVER = "ever"  # any clinical status (history counts), whatever its date
    ACTIVE_WITHIN = "active-within"  # clinically active and onset or recorded date within the window
    WITHIN = "within"  # any clinical status, onset or recorded date within the window
    ACTIVE_OR_WITHIN = "active-or-within"  # clinically active, or onset or recorded date within the window


@dataclass(frozen=True, slots=True)
class ConditionCriterion:
    value_set: str
    timing: Timing
    window_days: int = 0  # for the timings with a window: how many days back from the evaluation date

    def __post_init__(self) -> None:
        windowed = self.timing in (Timing.ACTIVE_WITHIN, Timing.WITHIN, Timing.ACTIVE_OR_WITHIN)
        if windowed != (self.window_days > 0):
            raise ValueError(f"criterion {self.value_set}: a window of days goes with a windowed timing")


@dataclass(frozen=True, slots=True)
class RedFlagDefinition:
    id: str
    description: str  # in a clinician's words, with examples, for data-gap text
    question: str  # one yes/no question, asked when the record cannot show the flag (thresholds filled in)
    inputs: tuple[InputKind, ...]  # the inputs that could show it
    conditions: tuple[ConditionCriterion, ...]
    sources: tuple[str, ...]  # ids in knowledge/sources.yaml
    note: str | None = None


_WHERE = CRITERIA_FILE.name


def _thresholds(document: Mapping[str, Any]) -> Mapping[str, Decimal]:
    result = {}
    for name, entry in entries(document, "thresholds", where=_WHERE).items():
        where = f"{_WHERE} thresholds.{name}"
        source_ids(entry, where=where)
        try:
            value = Decimal(cast(str, text(entry, "value", where=where)))
        except InvalidOperation as error:
            raise KnowledgeError(f"{where}: value must be a decimal number as text") from error
        if not value.is_finite() or value < 0:
            raise KnowledgeError(f"{where}: value must be a finite number, not negative")
        result[name] = value
    return MappingProxyType(result)


def _threshold(name: str) -> Decimal:
    try:
        return THRESHOLDS[name]
    except KeyError:
        raise KnowledgeError(f"{_WHERE}: threshold {name!r} is missing") from None


def _whole_days(name: str) -> int:
    value = _threshold(name)
    if value != value.to_integral_value() or value <= 0:
        raise KnowledgeError(f"{_WHERE} thresholds.{name}: must be a whole number of days above 0")
    return int(value)


def _window(raw: Any, where: str) -> int:
    """`window_days`: a number of days, or the name of a threshold (one window shared by two readings)."""
    if raw is None:
        return 0
    if isinstance(raw, str):
        if raw not in THRESHOLDS:
            _fail(where, f"no threshold named {raw!r}")
        return _whole_days(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        _fail(where, "window_days must be a whole number of days above 0 or a threshold's name")
    return raw


def _fail(where: str, problem: str) -> NoReturn:
    raise KnowledgeError(f"{where}: {problem}")


def _criterion(raw: Any, where: str) -> ConditionCriterion:
    if not isinstance(raw, dict) or set(raw) - {"value_set", "timing", "window_days"}:
        _fail(where, "a condition criterion has value_set, timing and, for windowed timings, window_days")
    try:
        timing = Timing(str(raw.get("timing")))
        return ConditionCriterion(
            cast(str, text(raw, "value_set", where=where)), timing, _window(raw.get("window_days"), where)
        )
    except ValueError as error:
        raise KnowledgeError(f"{where}: {error}") from error


_PLACEHOLDER = re.compile(r"\{([a-z_]+)(%?)\}")


def _question(template: str, where: str) -> str:
    """The question with `{threshold}` (its value) and `{threshold%}` (a fraction as a percentage) filled
    in, so a threshold changed above changes the question too."""
    if not template.endswith("?"):
        _fail(where, "a question ends with '?'")

    def fill(match: re.Match[str]) -> str:
        name, percent = match.groups()
        if name not in THRESHOLDS:
            _fail(where, f"no threshold named {name!r}")
        value = THRESHOLDS[name]
        return f"{(value * 100).normalize():f}%" if percent else f"{value:f}"

    filled = _PLACEHOLDER.sub(fill, template)
    if "{" in filled or "}" in filled:
        _fail(where, "placeholders are {threshold} or {threshold%}")
    return filled


def _red_flags(document: Mapping[str, Any]) -> Mapping[str, RedFlagDefinition]:
    result = {}
    for flag_id, entry in entries(document, "red_flags", where=_WHERE).items():
        where = f"{_WHERE} red_flags.{flag_id}"
        raw_inputs = entry.get("inputs")
        if not isinstance(raw_inputs, list) or not raw_inputs:
            _fail(where, "'inputs' must be a non-empty list of record parts")
        try:
            inputs = tuple(InputKind(kind) for kind in raw_inputs)
        except ValueError:
            _fail(
                where,
                f"'inputs' must name parts of the record: {', '.join(kind.value for kind in InputKind)}",
            )
        raw_conditions = entry.get("conditions")
        if not isinstance(raw_conditions, list):
            _fail(where, "'conditions' must be a list (empty when no Condition shows the flag)")
        result[flag_id] = RedFlagDefinition(
            id=flag_id,
            description=cast(str, text(entry, "description", where=where)),
            question=_question(cast(str, text(entry, "question", where=where)), f"{where}.question"),
            inputs=inputs,
            conditions=tuple(
                _criterion(raw, f"{where}.conditions[{i}]") for i, raw in enumerate(raw_conditions)
            ),
            sources=source_ids(entry, where=where),
            note=text(entry, "note", where=where, required=False),
        )
    return MappingProxyType(result)


def _value_set_roles(document: Mapping[str, Any]) -> Mapping[str, str]:
    section = document.get("value_sets")
    if not isinstance(section, dict) or not all(isinstance(v, str) for v in section.values()):
        _fail(_WHERE, "'value_sets' must map each role to a value set id")
    return MappingProxyType(dict(section))


_DOCUMENT = criteria_document()
THRESHOLDS: Mapping[str, Decimal] = _thresholds(_DOCUMENT)
RED_FLAGS: Mapping[str, RedFlagDefinition] = _red_flags(_DOCUMENT)
VALUE_SET_ROLES: Mapping[str, str] = _value_set_roles(_DOCUMENT)

FEVER_MIN_CELSIUS = _threshold("fever_min_celsius")
FEVER_WINDOW_DAYS = _whole_days("fever_window_days")
WEIGHT_LOSS_MIN_FRACTION = _threshold("weight_loss_min_fraction")
WEIGHT_LOSS_WINDOW_DAYS = _whole_days("weight_loss_window_days")
STEROID_MIN_DAYS = _whole_days("steroid_min_days")
STEROID_LOOKBACK_DAYS = _whole_days("steroid_lookback_days")
OLDER_AGE_YEARS = int(_threshold("older_age_years"))
ELDERLY_AGE_YEARS = int(_threshold("elderly_age_years"))
# Physiologically plausible ranges: readings outside are data errors (e.g. 384 for 38.4), not findings.
PLAUSIBLE_CELSIUS = (_threshold("plausible_celsius_min"), _threshold("plausible_celsius_max"))
PLAUSIBLE_KILOGRAMS = (_threshold("plausible_kilograms_min"), _threshold("plausible_kilograms_max"))


def _role(name: str) -> str:
    return (
        VALUE_SET_ROLES[name] if name in VALUE_SET_ROLES else _fail(_WHERE, f"value_sets.{name} is missing")
    )


# Value sets read outside the Condition table.
LOW_BACK_PAIN = _role("low_back_pain")
BODY_TEMPERATURE = _role("body_temperature")
BODY_WEIGHT = _role("body_weight")
SYSTEMIC_CORTICOSTEROIDS = _role("systemic_corticosteroids")
OSTEOPOROSIS_DRUGS = _role("osteoporosis_drugs")
LUMBAR_SURGERY = _role("lumbar_surgery")
PHYSICAL_THERAPY = _role("physical_therapy")


def check_criteria() -> None:
    """Fails fast (at start-up) when the table and the value sets disagree; names what is wrong."""
    if tuple(RED_FLAGS) != RED_FLAG_IDS:
        raise ValueSetError(f"red-flag table ids {tuple(RED_FLAGS)} differ from RED_FLAG_IDS")
    available = load_value_sets()
    used = {criterion.value_set for flag in RED_FLAGS.values() for criterion in flag.conditions}
    used |= set(VALUE_SET_ROLES.values())
    missing = sorted(used - set(available))
    if missing:
        raise ValueSetError(f"value sets named by the red-flag criteria are missing: {', '.join(missing)}")


@cache
def condition_value_sets() -> tuple[str, ...]:
    """Every value set a Condition is read against: the red-flag criteria and the low back pain episode.

    Cached: it names the code index read for every Condition (the table is constant)."""
    ids = [criterion.value_set for flag in RED_FLAGS.values() for criterion in flag.conditions]
    return (LOW_BACK_PAIN, *dict.fromkeys(ids))


@cache
def flags_by_value_set() -> Mapping[str, tuple[str, ...]]:
    """Condition value set id -> the red flags it can show (built once: read for every order reason)."""
    result: dict[str, list[str]] = {}
    for flag in RED_FLAGS.values():
        for criterion in flag.conditions:
            result.setdefault(criterion.value_set, []).append(flag.id)
    return MappingProxyType({vs_id: tuple(flags) for vs_id, flags in result.items()})
