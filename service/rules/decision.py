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


class Applicability(StrEnum):
    """Whether the low back pain criteria apply to an order: three-valued, since the record may not say."""

    APPLIES = "applies"  # an active low back pain episode, or the order's reason names it or a red flag
    NOT_APPLICABLE = "not-applicable"  # the record was read and holds no low back pain diagnosis
    # The low back pain diagnosis could not be read (Conditions missing, partial or unreadable): the order
    # is judged as if the criteria apply, the safer reading, but it is not rated.
    UNDETERMINED = "undetermined"


class RatingWithheld(StrEnum):
    """Why no PAMA rating is written into an order (Argonaut: where none can be determined, none is given)."""

    UNCHECKED_DATA = "unchecked-data"  # what could not be checked would change the rating
    LOW_BACK_PAIN_UNCONFIRMED = "low-back-pain-unconfirmed"  # criteria may not apply at all


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
    # The citation naming it the first-line test for this patient: an applied variant names it, and
    # every applied variant rates it usually appropriate. None otherwise.
    first_line: str | None = None


class AlternativeKind(StrEnum):
    BETTER = "better"  # in a better category than the order
    URGENT = "urgent"  # the urgent study: the order is not usually appropriate for the urgent red flags
    EQUAL = "equal"  # in the order's (best) category and worth knowing; the order need not change


class Merit(StrEnum):
    """What speaks for an alternative beside its category, in the order the card says them."""

    FIRST_LINE = "first-line"  # the guideline's first-line test here (the rating's `first_line` cites it)
    NO_RADIATION = "no-radiation"
    LOWER_RADIATION = "lower-radiation"
    KEEPS_CONTRAST = "keeps-contrast"  # the rules' contrast preference chose it


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another procedure than the ordered one, and why, as codes: service/wording says it in words."""

    rating: Rating
    kind: AlternativeKind
    # The order's rating it is compared with (for the urgent study: on the urgent variants alone).
    ordered: Rating
    merits: tuple[Merit, ...] = ()
    urgent_flags: tuple[str, ...] = ()  # the urgent study: the red flags that call for it

    @property
    def urgent(self) -> bool:
        return self.kind is AlternativeKind.URGENT


@dataclass(frozen=True, slots=True)
class OrderJudgement:
    order: ImagingOrder
    procedure: Procedure | None  # None when the rules do not know the order's procedure
    applicability: Applicability
    appropriateness: Appropriateness
    cells: tuple[Cell, ...]  # the cells that decided `appropriateness`
    # A procedure in a better category, or the urgent study when the order is not usually appropriate
    # for the urgent red flags: suggested as a replacement.
    alternative: Alternative | None
    # The order's appropriateness if every red flag that could not be checked were present; set only
    # when that would change the verdict, so the card can say so.
    if_unchecked_present: Appropriateness | None
    # No red flags: conservative care (a physical therapy referral) comes before imaging.
    conservative_care_first: bool
    # The order is in the best category already; an equally rated procedure that spares radiation or is
    # the first-line test. Mentioned, never suggested as a replacement.
    equal_option: Alternative | None = None
    first_line: str | None = None  # the citation naming the ordered procedure first-line, if one does

    @property
    def applicable(self) -> bool:
        """Judged against the criteria: they apply, or may (undetermined is judged as if they do)."""
        return self.applicability is not Applicability.NOT_APPLICABLE

    @property
    def pama_rating(self) -> PamaRating:
        """The rating of the verdict; written into the order only when `rating_withheld` is None."""
        return self.appropriateness.pama_rating

    @property
    def rating_withheld(self) -> RatingWithheld | None:
        if self.applicability is Applicability.UNDETERMINED:
            return RatingWithheld.LOW_BACK_PAIN_UNCONFIRMED
        would_be = self.if_unchecked_present
        if would_be is not None and would_be.pama_rating is not self.pama_rating:
            return RatingWithheld.UNCHECKED_DATA
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    findings: Findings
    rules: Rules = field(repr=False)
    # Low back pain criteria apply to the patient: an active episode, or an order's reason names it, or
    # the episode could not be determined (judged as if they apply).
    criteria_apply: bool
    # No active low back pain diagnosis was found, but the Conditions were missing, partial or unreadable.
    episode_undetermined: bool
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
