"""The red-flag questions, built once from the knowledge: the question from the red-flag criteria, and why
it matters from the rules (which variant a yes points to, whether it makes imaging urgent, and what the
guideline then rates usually appropriate). No question is written by hand here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fhir_mappings.criteria import RED_FLAGS
from fhir_mappings.registry import criteria_document
from fhir_mappings.registry import sources as criteria_sources
from service.rules import Category, Decision, Rules, Variant
from service.rules.model import AnyOf, AtLeast, FlagTerm, expression_flags


@dataclass(frozen=True, slots=True)
class Question:
    flag: str  # the red-flag id, also the Questionnaire item's linkId
    title: str  # the red flag, as cards name it
    text: str  # the question, in a clinician's words
    why: str  # what a yes would change, from the rules
    urgent: bool  # a yes makes imaging urgent
    variants: tuple[str, ...]  # the variants a yes points to, alone or with other factors
    citations: tuple[str, ...]  # references, as a clinician writes them


@dataclass(frozen=True, slots=True)
class QuestionCatalog:
    """One question per red flag, in the order urgent first, then the red-flag table's."""

    version: str  # the rules' and the criteria's versions: the questions change with either
    rules_version: str
    questions: Mapping[str, Question]
    implied: Mapping[str, tuple[str, ...]]  # a flag -> the weaker ones a yes to it implies (age over 70)

    @classmethod
    def from_rules(cls, rules: Rules) -> QuestionCatalog:
        built = [_question(rules, flag_id) for flag_id in RED_FLAGS]
        ordered = sorted(built, key=lambda question: not question.urgent)  # stable: table order kept
        criteria_version = str(criteria_document().get("version", "unversioned"))
        return cls(
            version=f"{rules.version}+criteria.{criteria_version}",
            rules_version=rules.version,
            questions=MappingProxyType({question.flag: question for question in ordered}),
            implied=rules.implied_flags,
        )

    def asked(self, decision: Decision) -> tuple[str, ...]:
        """The questions for what this decision could not check, urgent first. Empty: nothing to ask."""
        unchecked = {flag.id for flag in decision.unchecked_flags}
        return tuple(flag for flag in self.questions if flag in unchecked)

    def select(self, flags: Sequence[str]) -> tuple[Question, ...]:
        wanted = set(flags)
        return tuple(question for flag, question in self.questions.items() if flag in wanted)


def _variant_name(variant: Variant) -> str:
    return f"{variant.id}, {variant.title}"


def _best_procedure(rules: Rules, variant: Variant) -> str | None:
    """The first usually appropriate procedure (the rules list them least invasive first)."""
    for procedure_id, procedure in rules.procedures.items():
        cell = variant.cells.get(procedure_id)
        if cell is not None and cell.category is Category.USUALLY_APPROPRIATE:
            return procedure.title
    return None


def _alone(variant: Variant, flag_id: str) -> bool:
    """A yes alone points to the variant (the flag is one of its `any_of`, or its whole trigger)."""
    match variant.when:
        case FlagTerm(flag=flag):
            return flag == flag_id
        case AnyOf(terms=terms):
            return any(isinstance(term, FlagTerm) and term.flag == flag_id for term in terms)
    return False


def _with_others(rules: Rules, variant: Variant, flag_id: str) -> str | None:
    """ "with 1 more of: age over 50, symptoms for 4 weeks" when the flag counts toward an at_least."""
    terms = variant.when.terms if isinstance(variant.when, AnyOf) else (variant.when,)
    for term in terms:
        if isinstance(term, AtLeast) and flag_id in expression_flags(term):
            others = [
                rules.term_title(_term_id(other))
                for other in term.terms
                if not (isinstance(other, FlagTerm) and other.flag == flag_id)
            ]
            return f"with {term.count - 1} more of: {', '.join(others)}"
    return None


def _term_id(term: object) -> str:
    if isinstance(term, FlagTerm):
        return term.flag
    condition = getattr(term, "condition", None)
    return condition.id if condition is not None else ""


def _question(rules: Rules, flag_id: str) -> Question:
    definition = RED_FLAGS[flag_id]
    urgent = flag_id in expression_flags(rules.urgent.when)
    reasons: list[str] = []
    cited: list[str] = []
    variants: list[str] = []
    for variant in rules.variants.values():
        if flag_id not in expression_flags(variant.when):
            continue
        variants.append(variant.id)
        cited.append(variant.citation)
        best = _best_procedure(rules, variant)
        rated = f": {best} usually appropriate" if best else ""
        if urgent:
            continue  # said once below, with the urgent study
        if _alone(variant, flag_id):
            reasons.append(f"points to {_variant_name(variant)}{rated}")
        elif (others := _with_others(rules, variant, flag_id)) is not None:
            reasons.append(f"counts toward {_variant_name(variant)} {others}")
    if urgent:
        study = rules.procedures[rules.urgent.study].title
        named = ", ".join(_variant_name(rules.variants[v]) for v in variants)
        reasons.insert(0, f"makes imaging urgent: {study} now ({named})")
        cited.insert(0, rules.urgent.advice.citation)
    labels = [rules.citations[c].label for c in dict.fromkeys(cited) if c in rules.citations]
    why = "Yes " + "; ".join(reasons) if reasons else "Yes changes no variant on its own"
    if labels:
        why += f" [{', '.join(labels)}]"
    references = [rules.citations[c].reference() for c in dict.fromkeys(cited) if c in rules.citations]
    for source_id in definition.sources:
        source = criteria_sources().get(source_id)
        if source is not None and source_id not in rules.citations:
            references.append(f"{source.authors}. {source.title}.")
    return Question(
        flag=flag_id,
        title=rules.flag_title(flag_id),
        text=definition.question,
        why=why + ".",
        urgent=urgent,
        variants=tuple(variants),
        citations=tuple(dict.fromkeys(references)),
    )
