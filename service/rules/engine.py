"""The pure engine: findings + rules in, an explainable decision out. No I/O, no clock, no Flask.

What applies when an input is unknown (a red flag that could not be checked, an unknown symptom
duration): the logic is three-valued, so an unknown term makes a trigger unknown, never false.
- A variant applies only when its trigger is true: the verdict stands on what is known.
- A variant whose trigger is unknown is a *possible* variant. The decision lists it with the unchecked
  inputs, and each order records the rating it would get if every unchecked red flag were present, so
  the card can say "could not be checked" and what would change. Nothing unknown reads as "absent".
- A fallback variant (V2 "excluded_by", V1 "otherwise") applies unless another variant is known to apply.
- Applicability is three-valued too: when the low back pain diagnosis could not be read, an order is
  judged as if the criteria apply (never "no criteria apply"), and its rating is withheld.
- Urgency (cauda equina, severe neurologic deficit) does not depend on applicability.

Red flags come from the findings only: the mappings already make an order's reason a present red flag,
with the order as its evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fhir_mappings.model import Findings, FlagStatus, ImagingOrder, Modality, RedFlag

from .decision import (
    CATEGORY_APPROPRIATENESS,
    Alternative,
    AlternativeKind,
    Applicability,
    Appropriateness,
    Decision,
    Merit,
    OrderJudgement,
    PossibleVariant,
    Rating,
    VariantMatch,
)
from .model import (
    AllOf,
    AnyOf,
    AtLeast,
    Category,
    ConditionTerm,
    Expression,
    FlagTerm,
    Procedure,
    Rules,
    Variant,
)
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


def _first_line(procedure: Procedure, variants: Sequence[Variant]) -> str | None:
    """The citation naming the procedure first-line, if an applied variant does and none rates it lower."""
    if any(variant.cells[procedure.id].category is not Category.USUALLY_APPROPRIATE for variant in variants):
        return None
    for variant in variants:
        if variant.first_line is not None and procedure.id in variant.first_line.procedures:
            return variant.first_line.citation
    return None


def _rate(procedure: Procedure, variants: Sequence[Variant]) -> Rating:
    """The most favourable category among the variants, with every cell that gives it."""
    if not variants:
        return Rating(procedure, Appropriateness.NO_CRITERIA_APPLY)
    cells = [variant.cells[procedure.id] for variant in variants]
    best = max(cell.category.rank for cell in cells)
    deciding = tuple(cell for cell in cells if cell.category.rank == best)
    return Rating(
        procedure, CATEGORY_APPROPRIATENESS[deciding[0].category], deciding, _first_line(procedure, variants)
    )


def _preference(
    rating: Rating, position: int, modality: Modality | None = None
) -> tuple[int, int, int, int, int]:
    """Sort key: best category, first-line test, least radiation, the ordered modality, file order."""
    first_line = 0 if rating.first_line else 1
    same_modality = 0 if rating.procedure.modality == modality else 1
    return (
        -rating.appropriateness.rank,
        first_line,
        rating.procedure.radiation.rank,
        same_modality,
        position,
    )


def _best(ratings: Sequence[Rating], modality: Modality | None = None) -> Rating:
    ranked = sorted(enumerate(ratings), key=lambda item: _preference(item[1], item[0], modality))
    return ranked[0][1]


def _merits(option: Rating, ordered: Rating) -> tuple[Merit, ...]:
    """What speaks for `option` beside its category: first-line test, less radiation."""
    merits = []
    if option.first_line and not ordered.first_line:
        merits.append(Merit.FIRST_LINE)
    radiation = option.procedure.radiation
    if radiation.rank < ordered.procedure.radiation.rank:
        merits.append(Merit.NO_RADIATION if radiation.rank == 0 else Merit.LOWER_RADIATION)
    return tuple(merits)


def _replacement(option: Rating, ordered: Rating, *extra: Merit) -> Alternative:
    """`option` instead of the order: its category against the order's, then what else speaks for it."""
    return Alternative(option, AlternativeKind.BETTER, ordered, (*_merits(option, ordered), *extra))


def _alternative(ordered: Rating, ratings: Sequence[Rating], rules: Rules) -> Alternative | None:
    """The preferred procedure, only when it is in a better category than the order (and appropriate).

    An order with IV contrast is offered a procedure that also gives it, when one is in the best category
    (MRI without and with contrast for suspected infection or tumour, ACR V7, for an MRI or a CT with
    contrast); among several, the ordered modality first.
    """
    best = _best(ratings, ordered.procedure.modality)
    if (
        best.appropriateness.rank <= ordered.appropriateness.rank
        or best.appropriateness.rank < Appropriateness.MAY_BE_APPROPRIATE.rank
    ):
        return None
    if ordered.procedure.iv_contrast:
        keeping_contrast = [
            rating
            for rating in ratings
            if rating.procedure.iv_contrast and rating.appropriateness is best.appropriateness
        ]
        if keeping_contrast:
            option = _best(keeping_contrast, ordered.procedure.modality)
            return _replacement(option, ordered, Merit.KEEPS_CONTRAST)
    return _replacement(best, ordered)


def _urgent_study(ordered: Rating, urgent: Sequence[VariantMatch], rules: Rules) -> Alternative | None:
    """The urgent study, when the order is not usually appropriate for the variants urgent flags trigger.

    Both are judged on those variants alone: a CT that fracture risk makes usually appropriate is still
    not the study for suspected cauda equina, and the urgency holds whether or not the low back pain
    criteria apply to the order.
    """
    if not urgent:
        return None
    urgent_variants = [match.variant for match in urgent]
    for_urgency = _rate(ordered.procedure, urgent_variants)
    if for_urgency.appropriateness is Appropriateness.USUALLY_APPROPRIATE:
        return None
    study = _rate(rules.procedures[rules.urgent.study], urgent_variants)
    flags = tuple(_unique(label for match in urgent for label in match.triggered_by))
    return Alternative(
        study, AlternativeKind.URGENT, for_urgency, _merits(study, ordered), urgent_flags=flags
    )


def _equal_option(ordered: Rating, ratings: Sequence[Rating], rules: Rules) -> Alternative | None:
    """For an order already in the best category: an equal procedure that is first-line or spares radiation.

    Only mentioned: switching within a category would trade a usually appropriate test for another
    (e.g. radiography, first-line for fracture risk, for a far costlier MRI).
    """
    if (
        ordered.appropriateness.rank < Appropriateness.MAY_BE_APPROPRIATE.rank
        or _best(ratings).appropriateness.rank > ordered.appropriateness.rank
    ):
        return None
    options = [
        rating
        for rating in ratings
        if rating.appropriateness is ordered.appropriateness
        and rating.procedure.id != ordered.procedure.id
        and _merits(rating, ordered)
    ]
    if not options:
        return None
    option = _best(options, ordered.procedure.modality)
    return Alternative(option, AlternativeKind.EQUAL, ordered, _merits(option, ordered))


# The mappings' own statement that the Conditions were read and hold no active low back pain diagnosis.
# It names "episode" (its duration is unknown), yet the episode is known: absent.
_NO_EPISODE_GAP = "no-active-low-back-pain"


def _episode_undetermined(findings: Findings) -> bool:
    """No active episode found, but Conditions were missing, partial or unreadable: it may exist."""
    if findings.episode.active:
        return False
    return any("episode" in gap.affects and gap.id != _NO_EPISODE_GAP for gap in findings.data_gaps)


def _applicability(findings: Findings, order: ImagingOrder, episode_undetermined: bool) -> Applicability:
    if findings.episode.active or order.reason_names_low_back_pain or order.reason_red_flags:
        return Applicability.APPLIES
    return Applicability.UNDETERMINED if episode_undetermined else Applicability.NOT_APPLICABLE


def _judge(
    order: ImagingOrder,
    rules: Rules,
    applicability: Applicability,
    ratings: Mapping[str, Rating],
    if_present: Mapping[str, Rating],
    conservative_care_first: bool,
    urgent: Sequence[VariantMatch],
) -> OrderJudgement:
    procedure = rules.procedures.get(order.procedure)
    if procedure is None or applicability is Applicability.NOT_APPLICABLE:
        no_criteria = Appropriateness.NO_CRITERIA_APPLY
        return OrderJudgement(
            order=order,
            procedure=procedure,
            applicability=Applicability.NOT_APPLICABLE,
            appropriateness=no_criteria,
            cells=(),
            # Urgency is the patient's: the urgent study is offered even where no criteria apply.
            alternative=_urgent_study(Rating(procedure, no_criteria), urgent, rules) if procedure else None,
            if_unchecked_present=None,
            conservative_care_first=False,
        )
    rating = ratings[procedure.id]
    would_be = if_present[procedure.id].appropriateness
    every = list(ratings.values())
    urgent_study = _urgent_study(rating, urgent, rules)
    return OrderJudgement(
        order=order,
        procedure=procedure,
        applicability=applicability,
        appropriateness=rating.appropriateness,
        cells=rating.cells,
        alternative=urgent_study or _alternative(rating, every, rules),
        if_unchecked_present=would_be if would_be.rank > rating.appropriateness.rank else None,
        conservative_care_first=conservative_care_first,
        equal_option=None if urgent_study else _equal_option(rating, every, rules),
        first_line=rating.first_line,
    )


def _modalities(ratings: Iterable[Rating]) -> Mapping[Modality, Rating]:
    by_modality: dict[Modality, list[Rating]] = {}
    for rating in ratings:
        by_modality.setdefault(rating.procedure.modality, []).append(rating)
    return MappingProxyType({modality: _best(group) for modality, group in by_modality.items()})


def assess(findings: Findings, rules: Rules) -> Decision:
    """Judge the patient and each of their imaging orders against the rules. Pure and deterministic."""
    flags = findings.red_flags
    evaluator = _Evaluator(findings, flags)
    outcomes = {
        variant.id: evaluator.evaluate(variant.when)
        for variant in rules.variants.values()
        if variant.when is not None
    }
    episode_undetermined = _episode_undetermined(findings)
    applicability = [_applicability(findings, order, episode_undetermined) for order in findings.orders]
    criteria_apply = findings.episode.active or episode_undetermined or Applicability.APPLIES in applicability
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
    # The variants the urgent flags trigger (V4, neuro): an order is judged against them for urgency,
    # whether or not the low back pain criteria apply (`matches` is empty when they do not).
    urgent_matches = tuple(
        VariantMatch(variant, outcomes[variant.id].because)
        for variant in (applied if criteria_apply else _select_variants(rules, outcomes, count_unknown=False))
        if variant.id in outcomes and set(outcomes[variant.id].because) & set(urgent.because)
    )
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
        episode_undetermined=episode_undetermined,
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
            _judge(
                order, rules, applies, ratings, ratings_if_present, conservative_care_first, urgent_matches
            )
            for order, applies in zip(findings.orders, applicability, strict=True)
        ),
        conservative_care_first=conservative_care_first,
    )
