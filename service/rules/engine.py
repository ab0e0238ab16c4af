"""The pure engine: findings + rules in, an explainable decision out. No I/O, no clock, no Flask.

What applies when an input is unknown (a red flag that could not be checked, an unknown symptom
duration): the logic is three-valued, so an unknown term makes a trigger unknown, never false.
- A variant applies only when its trigger is true: the verdict stands on what is known.
- A variant whose trigger is unknown is a *possible* variant. The decision lists it with the unchecked
  inputs, and each order records the rating it would get if every unchecked red flag were present, so
  the card can say "could not be checked" and what would change. Nothing unknown reads as "absent".
- A fallback variant (V2 "excluded_by", V1 "otherwise") applies unless another variant is known to apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from fhir_mappings.model import Evidence, Findings, FlagStatus, ImagingOrder, Modality, RedFlag

from .decision import (
    CATEGORY_APPROPRIATENESS,
    Alternative,
    Appropriateness,
    Decision,
    OrderJudgement,
    PossibleVariant,
    Rating,
    VariantMatch,
)
from .model import AllOf, AnyOf, AtLeast, ConditionTerm, Expression, FlagTerm, Procedure, Rules, Variant
from .variables import VARIABLE_READERS


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A three-valued result: True, False or None (unknown), with the terms behind it."""

    value: bool | None
    because: tuple[str, ...] = ()  # the true terms that made it true
    unknown: tuple[str, ...] = ()  # the unknown terms that left it undecided


_FALSE = _Outcome(False)


def _unique(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(labels))


class _Evaluator:
    def __init__(self, findings: Findings, flags: Mapping[str, RedFlag]) -> None:
        self.findings = findings
        self.flags = flags

    def evaluate(self, expression: Expression) -> _Outcome:
        match expression:
            case FlagTerm(flag=flag_id):
                flag = self.flags.get(flag_id)
                if flag is None or flag.status is FlagStatus.UNKNOWN:
                    return _Outcome(None, unknown=(flag_id,))
                return _Outcome(True, because=(flag_id,)) if flag.status is FlagStatus.PRESENT else _FALSE
            case ConditionTerm(condition=condition):
                value = VARIABLE_READERS[condition.variable.name](self.findings)
                if value is None:
                    return _Outcome(None, unknown=(condition.id,))
                return (
                    _Outcome(True, because=(condition.id,))
                    if _compare(value, condition.operator, condition.value)
                    else _FALSE
                )
            case AnyOf(terms=terms):
                return self._at_least(1, terms)
            case AllOf(terms=terms):
                return self._at_least(len(terms), terms)
            case AtLeast(count=count, terms=terms):
                return self._at_least(count, terms)
        raise AssertionError(
            f"unhandled expression {expression!r}"
        )  # pragma: no cover - the loader builds only these

    def _at_least(self, count: int, terms: Sequence[Expression]) -> _Outcome:
        outcomes = [self.evaluate(term) for term in terms]
        true = [outcome for outcome in outcomes if outcome.value is True]
        unknown = [outcome for outcome in outcomes if outcome.value is None]
        if len(true) >= count:
            return _Outcome(True, because=_unique(label for outcome in true for label in outcome.because))
        if len(true) + len(unknown) < count:
            return _FALSE
        return _Outcome(None, unknown=_unique(label for outcome in unknown for label in outcome.unknown))


def _compare(value: int | bool, operator: str, threshold: int | bool) -> bool:
    if operator == "==":
        return value == threshold
    number, limit = int(value), int(threshold)
    return {">=": number >= limit, ">": number > limit, "<=": number <= limit, "<": number < limit}[operator]


def _with_order_reasons(findings: Findings) -> dict[str, RedFlag]:
    """Red flags from the record, plus those an order's reason names (the clinician's own finding)."""
    flags = dict(findings.red_flags)
    for order in findings.orders:
        for flag_id in order.reason_red_flags:
            evidence = Evidence(reference=order.reference, detail="named as the reason for the order")
            current = flags.get(flag_id)
            if current is None or current.status is not FlagStatus.PRESENT:
                flags[flag_id] = RedFlag(id=flag_id, status=FlagStatus.PRESENT, evidence=(evidence,))
            elif order.reference not in {item.reference for item in current.evidence}:
                flags[flag_id] = replace(current, evidence=(*current.evidence, evidence))
    return flags


def _select_variants(rules: Rules, outcomes: Mapping[str, _Outcome], *, count_unknown: bool) -> list[Variant]:
    """The variants that apply; with `count_unknown`, as if every unknown trigger were true."""

    def fires(outcome: _Outcome) -> bool:
        return outcome.value is True or (count_unknown and outcome.value is None)

    applied = [
        variant
        for variant in rules.variants.values()
        if not variant.otherwise and not variant.excluded_by and fires(outcomes[variant.id])
    ]
    applied_ids = {variant.id for variant in applied}
    applied += [
        variant
        for variant in rules.variants.values()
        if variant.excluded_by
        and fires(outcomes[variant.id])
        and not applied_ids.intersection(variant.excluded_by)
    ]
    if not applied:
        applied = [variant for variant in rules.variants.values() if variant.otherwise]
    return applied


def _rate(procedure: Procedure, variants: Sequence[Variant]) -> Rating:
    """The most favourable category among the variants, with every cell that gives it."""
    if not variants:
        return Rating(procedure, Appropriateness.NO_CRITERIA_APPLY)
    cells = [variant.cells[procedure.id] for variant in variants]
    best = max(cell.category.rank for cell in cells)
    deciding = tuple(cell for cell in cells if cell.category.rank == best)
    return Rating(procedure, CATEGORY_APPROPRIATENESS[deciding[0].category], deciding)


def _preference(rating: Rating, position: int, modality: Modality | None = None) -> tuple[int, int, int, int]:
    """Sort key: best category, then least radiation, then the ordered modality, then file order."""
    same_modality = 0 if rating.procedure.modality == modality else 1
    return (-rating.appropriateness.rank, rating.procedure.radiation.rank, same_modality, position)


def _best(ratings: Sequence[Rating], modality: Modality | None = None) -> Rating:
    ranked = sorted(enumerate(ratings), key=lambda item: _preference(item[1], item[0], modality))
    return ranked[0][1]


def _phrase(appropriateness: Appropriateness) -> str:
    return appropriateness.value.replace("-", " ")


def _alternative(ordered: Rating, ratings: Sequence[Rating]) -> Alternative | None:
    """The preferred procedure when it beats the order on category, or equals it with less radiation."""
    best = _best(ratings, ordered.procedure.modality)
    if (
        best.procedure.id == ordered.procedure.id
        or best.appropriateness.rank < Appropriateness.MAY_BE_APPROPRIATE.rank
    ):
        return None
    better_category = best.appropriateness.rank > ordered.appropriateness.rank
    less_radiation = best.procedure.radiation.rank < ordered.procedure.radiation.rank
    if not better_category and not (less_radiation and best.appropriateness is ordered.appropriateness):
        return None
    reason = f"{best.procedure.title} is rated {_phrase(best.appropriateness)}"
    if better_category:
        ordered_title = ordered.procedure.title[0].lower() + ordered.procedure.title[1:]
        reason += f", whereas {ordered_title} is rated {_phrase(ordered.appropriateness)}"
    if less_radiation:
        radiation = best.procedure.radiation
        reason += (
            "; it involves no ionising radiation"
            if radiation.rank == 0
            else f"; it has a lower radiation level ({radiation.describe()})"
        )
    return Alternative(best, reason + ".")


def _applicable(findings: Findings, order: ImagingOrder) -> bool:
    return findings.episode.active or order.reason_names_low_back_pain or bool(order.reason_red_flags)


def _judge(
    order: ImagingOrder,
    rules: Rules,
    findings: Findings,
    ratings: Mapping[str, Rating],
    if_present: Mapping[str, Rating],
    conservative_care_first: bool,
) -> OrderJudgement:
    procedure = rules.procedures.get(order.procedure)
    if procedure is None or not _applicable(findings, order):
        return OrderJudgement(
            order=order,
            procedure=procedure,
            applicable=False,
            appropriateness=Appropriateness.NO_CRITERIA_APPLY,
            cells=(),
            alternative=None,
            if_unchecked_present=None,
            conservative_care_first=False,
        )
    rating = ratings[procedure.id]
    would_be = if_present[procedure.id].appropriateness
    return OrderJudgement(
        order=order,
        procedure=procedure,
        applicable=True,
        appropriateness=rating.appropriateness,
        cells=rating.cells,
        alternative=_alternative(rating, list(ratings.values())),
        if_unchecked_present=would_be if would_be.rank > rating.appropriateness.rank else None,
        conservative_care_first=conservative_care_first,
    )


def _modalities(ratings: Iterable[Rating]) -> Mapping[Modality, Rating]:
    by_modality: dict[Modality, list[Rating]] = {}
    for rating in ratings:
        by_modality.setdefault(rating.procedure.modality, []).append(rating)
    return MappingProxyType({modality: _best(group) for modality, group in by_modality.items()})


def assess(findings: Findings, rules: Rules) -> Decision:
    """Judge the patient and each of their imaging orders against the rules. Pure and deterministic."""
    flags = _with_order_reasons(findings)
    evaluator = _Evaluator(findings, flags)
    outcomes = {
        variant.id: evaluator.evaluate(variant.when)
        for variant in rules.variants.values()
        if variant.when is not None
    }
    criteria_apply = findings.episode.active or any(_applicable(findings, order) for order in findings.orders)
    applied = _select_variants(rules, outcomes, count_unknown=False) if criteria_apply else []
    if_present = _select_variants(rules, outcomes, count_unknown=True) if criteria_apply else []
    applied_ids = {variant.id for variant in applied}
    matches = tuple(
        VariantMatch(variant, outcomes[variant.id].because if variant.id in outcomes else ())
        for variant in applied
    )
    possible = tuple(
        PossibleVariant(variant, outcomes[variant.id].unknown)
        for variant in if_present
        if variant.id not in applied_ids and outcomes.get(variant.id, _FALSE).value is None
    )
    urgent = evaluator.evaluate(rules.urgent.when)
    triggering = {label for match in matches for label in match.triggered_by}
    present = tuple(flag for flag in flags.values() if flag.status is FlagStatus.PRESENT)
    # Every procedure rated once for what is known, and once as if every unchecked flag were present.
    ratings = {procedure.id: _rate(procedure, applied) for procedure in rules.procedures.values()}
    ratings_if_present = {
        procedure.id: _rate(procedure, if_present) for procedure in rules.procedures.values()
    }
    recommended = _best(list(ratings.values())) if applied else None
    conservative_care_first = bool(applied) and all(variant.conservative_care_first for variant in applied)
    return Decision(
        findings=findings,
        rules=rules,
        criteria_apply=criteria_apply,
        variants=matches,
        possible_variants=possible,
        urgent=urgent.value is True,
        urgent_flags=urgent.because,
        urgent_unchecked=urgent.unknown,
        red_flags=present,
        unchecked_flags=tuple(flag for flag in flags.values() if flag.status is FlagStatus.UNKNOWN),
        weak_factors=tuple(
            flag for flag in present if flag.id in rules.weak_factors.flags and flag.id not in triggering
        ),
        modalities=_modalities(ratings.values()),
        recommended=(
            recommended
            if recommended and recommended.appropriateness.rank >= Appropriateness.MAY_BE_APPROPRIATE.rank
            else None
        ),
        orders=tuple(
            _judge(order, rules, findings, ratings, ratings_if_present, conservative_care_first)
            for order in findings.orders
        ),
        conservative_care_first=conservative_care_first,
    )
