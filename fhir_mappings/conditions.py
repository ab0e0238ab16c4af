"""Conditions -> red-flag evidence and the current low back pain episode.

Statuses: a Condition whose verificationStatus is refuted or entered-in-error never counts. It is
clinically active when its clinicalStatus is active, recurrence or relapse; a Condition without a
clinicalStatus is taken as active unless it has an abatement (FHIR requires an inactive status then),
because problem lists often omit the status and an unknown status must not hide a red flag.
Dates: onset is onsetDateTime or onsetPeriod.start; a window ("within 30 days") is met when the onset
could fall in it (latest possible day of a partial date), or the recordedDate when there is no onset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from fhir_mappings.collect import Collector, Problem, evidence_for
from fhir_mappings.criteria import LOW_BACK_PAIN, RED_FLAGS, ConditionCriterion, Timing, condition_value_sets
from fhir_mappings.fhirdates import DateSpan, parse_fhir_date
from fhir_mappings.fhirjson import Coding, Resource, child, concept_codes, resource_type
from fhir_mappings.model import Episode, Evidence, InputKind
from fhir_mappings.terminology import CodeIndex, code_index

IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
_ABATEMENT = (
    "abatementDateTime",
    "abatementAge",
    "abatementPeriod",
    "abatementRange",
    "abatementString",
)


@dataclass(frozen=True, slots=True)
class ConditionFacts:
    resource: Resource
    codings: dict[str, Coding]  # value set id -> the first coding in it
    active: bool
    onset: DateSpan | None
    recorded: DateSpan | None

    @property
    def first_date(self) -> DateSpan | None:
        return self.onset or self.recorded

    def dated_within(self, days: int, as_of: date) -> bool | None:
        """Whether the problem began within the window: its onset, or its recorded date when the onset is
        unknown; None when it has neither. A recent recordedDate does not make an old problem new (an
        incontinence that began years ago and was entered in the chart last week is not cauda equina)."""
        span = self.first_date
        return None if span is None else span.within_last(days, as_of)


def is_clinically_active(condition: Resource) -> bool:
    statuses = concept_codes(child(condition, "clinicalStatus"))
    if statuses:
        return bool(statuses & ACTIVE_CLINICAL)
    return not any(condition.get(key) for key in _ABATEMENT) and condition.get("abatementBoolean") is not True


@cache
def _condition_index() -> CodeIndex:
    # Looked up once per Condition: spares hashing a dozen value set ids each time.
    return code_index(*condition_value_sets())


def read_condition(condition: Resource, collector: Collector) -> ConditionFacts | None:
    """The facts of a Condition coded in a value set the mappings read; None for anything else."""
    if resource_type(condition) != "Condition":
        return None
    index = _condition_index()
    matched: dict[str, Coding] = {}
    for coding in collector.codings_of(condition):
        for vs_id in index.matching(coding[0], coding[1]):
            matched.setdefault(vs_id, coding)
    if not matched or concept_codes(child(condition, "verificationStatus")) & IGNORED_VERIFICATION:
        return None
    onset = parse_fhir_date(condition.get("onsetDateTime")) or parse_fhir_date(
        child(condition, "onsetPeriod", "start")
    )
    return ConditionFacts(
        condition,
        matched,
        is_clinically_active(condition),
        onset,
        parse_fhir_date(condition.get("recordedDate")),
    )


def _meets(facts: ConditionFacts, criterion: ConditionCriterion, as_of: date) -> bool | None:
    """Whether a Condition meets a criterion; None when that depends on a date the record lacks."""
    timing = criterion.timing
    if timing is Timing.EVER:
        return True
    if timing is Timing.ACTIVE:
        return facts.active
    if timing is Timing.ACTIVE_WITHIN and not facts.active:
        return False
    if timing is Timing.ACTIVE_OR_WITHIN and facts.active:
        return True
    return facts.dated_within(criterion.window_days, as_of)


def _detail(facts: ConditionFacts) -> str | None:
    status = sorted(concept_codes(child(facts.resource, "clinicalStatus")))
    return f"clinical status: {', '.join(status)}" if status and not facts.active else None


def condition_findings(conditions: Sequence[Resource], collector: Collector) -> list[ConditionFacts]:
    """Adds red-flag evidence from Conditions; returns the active low back pain Conditions (valid ones)."""
    low_back_pain: list[ConditionFacts] = []
    for condition in conditions:
        facts = read_condition(condition, collector)
        if facts is None:
            continue
        met: list[tuple[str, str]] = []  # (flag, value set)
        undated: list[str] = []
        for definition in RED_FLAGS.values():
            for criterion in definition.conditions:
                if criterion.value_set not in facts.codings:
                    continue
                outcome = _meets(facts, criterion, collector.as_of)
                if outcome:
                    met.append((definition.id, criterion.value_set))
                elif outcome is None:
                    undated.append(definition.id)
        is_episode = LOW_BACK_PAIN in facts.codings and facts.active
        if not (met or undated or is_episode):
            continue
        flags = tuple(
            dict.fromkeys([flag for flag, _ in met] + undated + (["episode"] if is_episode else []))
        )
        if not collector.usable(condition, InputKind.CONDITIONS, flags):
            continue
        for flag, vs_id in met:
            collector.add(
                flag, evidence_for(condition, facts.codings[vs_id], facts.first_date, _detail(facts))
            )
        if undated:
            collector.cannot_use(condition, Problem.UNDATED, InputKind.CONDITIONS, tuple(undated))
        if is_episode:
            low_back_pain.append(facts)
    return low_back_pain


def episode_from(low_back_pain: Sequence[ConditionFacts], as_of: date) -> Episode:
    """The current episode: onset is the earliest possible day among the active Conditions' dates."""
    if not low_back_pain:
        return Episode(active=False)
    evidence: tuple[Evidence, ...] = tuple(
        evidence_for(facts.resource, facts.codings[LOW_BACK_PAIN], facts.first_date)
        for facts in low_back_pain
    )
    onsets = [facts.first_date.earliest for facts in low_back_pain if facts.first_date is not None]
    if not onsets:
        return Episode(active=True, evidence=evidence)
    onset = min(onsets)
    return Episode(active=True, onset=onset, symptom_days=max(0, (as_of - onset).days), evidence=evidence)
