"""The rules as loaded from the knowledge file: procedures, variants, their cells and citations.

Every type here is immutable; `Rules` is built once at start-up by `load_rules` and shared by all
requests and threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fhir_mappings.model import Modality


class RulesError(ValueError):
    """The knowledge file is not valid; the message names the rule and field, e.g. `variants.V7.when`."""


class Category(StrEnum):
    """ACR appropriateness category (ratings 7-9, 4-6, 1-3)."""

    USUALLY_APPROPRIATE = "usually-appropriate"
    MAY_BE_APPROPRIATE = "may-be-appropriate"
    USUALLY_NOT_APPROPRIATE = "usually-not-appropriate"

    @property
    def rank(self) -> int:
        """Higher is more favourable, so `max` picks the most favourable category."""
        return _CATEGORY_RANK[self]


_CATEGORY_RANK = {
    Category.USUALLY_APPROPRIATE: 3,
    Category.MAY_BE_APPROPRIATE: 2,
    Category.USUALLY_NOT_APPROPRIATE: 1,
}


class Provenance(StrEnum):
    """How a fact was established: read at the issuer, in a derivative source, or inferred."""

    VERIFIED = "verified"
    SECONDARY = "secondary"
    PRESUMED = "presumed"


VariableType = Literal["integer", "boolean"]
Operator = Literal[">=", ">", "<=", "<", "=="]


@dataclass(frozen=True, slots=True)
class OverrideReason:
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class OverrideReasons:
    """The coded reasons a card offers for not following it (CDS Hooks `overrideReasons`)."""

    system: str
    standard: tuple[OverrideReason, ...]  # warning cards: why image anyway
    urgent: tuple[OverrideReason, ...]  # critical cards: why not follow the urgent advice as given


@dataclass(frozen=True, slots=True)
class Citation:
    id: str
    label: str  # short, for inline references, e.g. "ACR 2021"
    title: str
    authors: str | None = None
    journal: str | None = None
    year: int | None = None
    doi: str | None = None
    url: str | None = None

    @property
    def link(self) -> str:
        """An absolute URL for the source: its own page, else its DOI."""
        if self.url:
            return self.url
        return f"https://doi.org/{self.doi}"

    def reference(self) -> str:
        """The citation as a clinician would write it in a reference list."""
        parts = [part for part in (self.authors, self.title, self.journal) if part]
        if self.year is not None and not (self.journal and str(self.year) in self.journal):
            parts.append(str(self.year))
        text = ". ".join(part.rstrip(".") for part in parts) + "."
        if self.doi:
            text += f" doi:{self.doi}"
        return text


@dataclass(frozen=True, slots=True)
class RadiationLevel:
    """ACR relative radiation level: 0 ("O") to 5 radiation symbols."""

    rank: int
    symbol: str
    adult_effective_dose: str

    @property
    def label(self) -> str:
        """As ACR writes it, e.g. "O (0 mSv)" or "☢☢☢ (1-10 mSv)"."""
        return f"{self.symbol} ({self.adult_effective_dose})"

    def describe(self) -> str:
        """In prose: "no ionising radiation" or the symbols with the dose range."""
        return "no ionising radiation" if self.rank == 0 else self.label


@dataclass(frozen=True, slots=True)
class ProcedureCode:
    system: str
    code: str
    display: str
    citation: str


@dataclass(frozen=True, slots=True)
class Procedure:
    id: str
    modality: Modality
    title: str  # in a clinician's words
    radiation: RadiationLevel
    radiation_citation: str
    codes: tuple[ProcedureCode, ...]
    iv_contrast: bool  # the study gives intravenous contrast

    def code_for(self, system: str | None) -> ProcedureCode:
        """The procedure's code in `system` when it has one, else its first (preferred) code."""
        for code in self.codes:
            if code.system == system:
                return code
        return self.codes[0]


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: VariableType
    description: str


@dataclass(frozen=True, slots=True)
class Condition:
    """A named comparison of one declared variable with a constant, e.g. `symptomDays >= 42`."""

    id: str
    variable: Variable
    operator: Operator
    value: int | bool
    title: str


@dataclass(frozen=True, slots=True)
class FlagTerm:
    """True when the red flag is present; unknown when it could not be checked."""

    flag: str


@dataclass(frozen=True, slots=True)
class ConditionTerm:
    condition: Condition


@dataclass(frozen=True, slots=True)
class AnyOf:
    terms: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    terms: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class AtLeast:
    count: int
    terms: tuple[Expression, ...]


Expression = FlagTerm | ConditionTerm | AnyOf | AllOf | AtLeast


def expression_flags(expression: Expression | None) -> tuple[str, ...]:
    """The red-flag ids an expression reads, in order, each once."""
    match expression:
        case FlagTerm(flag=flag):
            return (flag,)
        case AnyOf(terms=terms) | AllOf(terms=terms) | AtLeast(terms=terms):
            return tuple(dict.fromkeys(flag for term in terms for flag in expression_flags(term)))
    return ()


@dataclass(frozen=True, slots=True)
class Cell:
    """One variant x procedure judgement with where it comes from."""

    variant: str
    procedure: str
    category: Category
    provenance: Provenance
    citation: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class FirstLine:
    """The procedures a guideline names as the first test for a variant (all rated usually appropriate)."""

    procedures: tuple[str, ...]
    citation: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    title: str
    when: Expression | None  # None with `otherwise`
    otherwise: bool  # applies when no other variant does
    excluded_by: tuple[str, ...]  # applies only when none of these applies
    conservative_care_first: bool  # no red flags: advise conservative care instead of imaging
    citation: str
    cells: Mapping[str, Cell]  # procedure id -> cell, one for every procedure
    note: str | None = None
    # Preferred among the equally rated procedures, e.g. radiography first for fracture risk (ACP 2011).
    first_line: FirstLine | None = None

    @property
    def umbrella(self) -> bool:
        """Several red flags can trigger it (V6, V7): the flags found say more than its title."""
        return len(expression_flags(self.when)) > 1


@dataclass(frozen=True, slots=True)
class Advice:
    """Guidance the card quotes, with its source."""

    text: str
    citation: str


@dataclass(frozen=True, slots=True)
class UrgentRule:
    when: Expression
    advice: Advice
    study: str  # the procedure an urgent card offers instead of an order not right for the urgency


@dataclass(frozen=True, slots=True)
class WeakFactors:
    flags: tuple[str, ...]
    advice: Advice


@dataclass(frozen=True, slots=True)
class Referral:
    text: str
    codes: tuple[ProcedureCode, ...]


@dataclass(frozen=True, slots=True)
class ConservativeCare:
    advice: Advice
    referral: Referral


@dataclass(frozen=True, slots=True)
class Guideline:
    """What cards show as their `source` and `links`."""

    label: str
    citation: Citation
    links: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    title: str
    guideline: Guideline
    citations: Mapping[str, Citation]
    procedures: Mapping[str, Procedure]  # in preference order for ties
    red_flag_titles: Mapping[str, str]
    variables: Mapping[str, Variable]
    conditions: Mapping[str, Condition]
    variants: Mapping[str, Variant]  # in file order
    urgent: UrgentRule
    weak_factors: WeakFactors
    conservative_care: ConservativeCare
    # Why a replacement keeps the IV contrast of the order, with its source.
    contrast_preference: Advice
    # A red flag -> the weaker ones it implies (age over 70 -> age over 50), left unlisted beside it.
    implied_flags: Mapping[str, tuple[str, ...]]
    override_reasons: OverrideReasons

    def without_implied(self, flag_ids: Iterable[str]) -> tuple[str, ...]:
        """The flags, less any that another of them implies (listing both would say one thing twice)."""
        flag_ids = tuple(flag_ids)
        implied = {weaker for flag in flag_ids for weaker in self.implied_flags.get(flag, ())}
        return tuple(flag for flag in flag_ids if flag not in implied)

    def flag_title(self, flag_id: str) -> str:
        return self.red_flag_titles.get(flag_id, flag_id)

    def term_title(self, term: str) -> str:
        """Clinician words for a trigger label: a red-flag id or a condition id."""
        condition = self.conditions.get(term)
        return condition.title if condition else self.flag_title(term)
