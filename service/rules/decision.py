"""What the engine decides for one patient and their orders, with everything needed to explain it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fhir_mappings.model import DataGap, Findings, ImagingOrder, Modality, RedFlag

from .model import Category, Cell, Procedure, Rules, Variant


class Appropriateness(StrEnum):
    USUALLY_APPROPRIATE = "usually-appropriate"
    MAY_BE_APPROPRIATE = "may-be-appropriate"
    USUALLY_NOT_APPROPRIATE = "usually-not-appropriate"
    NO_CRITERIA_APPLY = "no-criteria-apply"

    @property
    def rank(self) -> int:
        """Higher is more favourable; no-criteria-apply ranks below every category."""
        return _APPROPRIATENESS_RANK[self]

    @property
    def pama_rating(self) -> PamaRating:
        """The Argonaut PAMA rating: usually and may be appropriate both count as appropriate."""
        if self is Appropriateness.NO_CRITERIA_APPLY:
            return PamaRating.NO_CRITERIA_APPLY
        if self is Appropriateness.USUALLY_NOT_APPROPRIATE:
            return PamaRating.NOT_APPROPRIATE
        return PamaRating.APPROPRIATE


CATEGORY_APPROPRIATENESS: Mapping[Category, Appropriateness] = {
    category: Appropriateness(category.value) for category in Category
}
_APPROPRIATENESS_RANK: Mapping[Appropriateness, int] = {
    Appropriateness.NO_CRITERIA_APPLY: 0,
    **{appropriateness: category.rank for category, appropriateness in CATEGORY_APPROPRIATENESS.items()},
}


class PamaRating(StrEnum):
    """Codes of http://fhir.org/argonaut/CodeSystem/pama-rating."""

    APPROPRIATE = "appropriate"
    NOT_APPROPRIATE = "not-appropriate"
    NO_CRITERIA_APPLY = "no-criteria-apply"


@dataclass(frozen=True, slots=True)
class VariantMatch:
    """A variant that applies, and the red-flag ids or condition ids that triggered it."""

    variant: Variant
    triggered_by: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.variant.id


@dataclass(frozen=True, slots=True)
class PossibleVariant:
    """A variant that could apply: its trigger depends on red flags or values that could not be checked."""

    variant: Variant
    unchecked: tuple[str, ...]  # red-flag ids or condition ids that were unknown

    @property
    def id(self) -> str:
        return self.variant.id


@dataclass(frozen=True, slots=True)
class Rating:
    """One procedure judged for this patient, with the cells that gave its category."""

    procedure: Procedure
    appropriateness: Appropriateness
    cells: tuple[Cell, ...] = ()  # every applied variant's cell with the winning category


@dataclass(frozen=True, slots=True)
class Alternative:
    """A better choice than the ordered procedure, and why in a clinician's words."""

    rating: Rating
    reason: str


@dataclass(frozen=True, slots=True)
class OrderJudgement:
    order: ImagingOrder
    procedure: Procedure | None  # None when the rules do not know the order's procedure
    applicable: bool  # low back pain criteria apply to this order
    appropriateness: Appropriateness
    cells: tuple[Cell, ...]  # the cells that decided `appropriateness`
    alternative: Alternative | None
    # The order's appropriateness if every red flag that could not be checked were present; set only
    # when that would change the verdict, so the card can say so.
    if_unchecked_present: Appropriateness | None
    # No red flags: conservative care (a physical therapy referral) comes before imaging.
    conservative_care_first: bool

    @property
    def pama_rating(self) -> PamaRating:
        return self.appropriateness.pama_rating


@dataclass(frozen=True, slots=True)
class Decision:
    findings: Findings
    rules: Rules = field(repr=False)
    # Low back pain criteria apply to the patient: an active episode, or an order's reason names it.
    criteria_apply: bool
    variants: tuple[VariantMatch, ...]
    possible_variants: tuple[PossibleVariant, ...]
    urgent: bool
    urgent_flags: tuple[str, ...]  # the red flags that make it urgent
    urgent_unchecked: tuple[str, ...]  # red flags that would make it urgent but could not be checked
    red_flags: tuple[RedFlag, ...]  # present, with evidence (the record's and the orders' reasons)
    unchecked_flags: tuple[RedFlag, ...]  # could not be checked: never read as absent
    weak_factors: tuple[RedFlag, ...]  # present, but trigger no variant on their own
    modalities: Mapping[Modality, Rating]  # the best procedure of each modality for this patient
    recommended: Rating | None  # the best procedure overall; None when no imaging is appropriate
    orders: tuple[OrderJudgement, ...]
    conservative_care_first: bool

    @property
    def rules_version(self) -> str:
        return self.rules.version

    @property
    def data_gaps(self) -> tuple[DataGap, ...]:
        return self.findings.data_gaps

    def variant_ids(self) -> tuple[str, ...]:
        return tuple(match.id for match in self.variants)

    def red_flag_ids(self) -> tuple[str, ...]:
        return tuple(flag.id for flag in self.red_flags)
