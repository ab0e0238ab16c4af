"""The engine's semantics on a small made-up rules file (tests/fixtures/rules/engine-fixture.yaml), apart
from the shipped ACR content: which variants apply, how categories combine, unknowns, the urgent study."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.rules import Appropriateness, Rules, assess, load_rules
from service.rules.decision import AlternativeKind

from .builders import findings, imaging_order

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "rules" / "engine-fixture.yaml"
UA = Appropriateness.USUALLY_APPROPRIATE
MBA = Appropriateness.MAY_BE_APPROPRIATE
UNA = Appropriateness.USUALLY_NOT_APPROPRIATE


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(FIXTURE)


@pytest.mark.parametrize(
    ("present", "symptom_days", "variants"),
    [
        ((), 10, ("S",)),  # `otherwise`: nothing else applies
        ((), 50, ("R",)),  # R's condition holds and nothing excludes it
        (("osteoporosis",), 50, ("P",)),  # P excludes R
        (("age-over-50",), 10, ("S",)),  # at_least 2: one is not enough
        (("age-over-50", "unexplained-weight-loss"), 10, ("Q",)),
        (("age-over-50",), 30, ("Q",)),  # a condition counts as a term (symptomDays>=28)
        (("osteoporosis", "age-over-50", "unexplained-weight-loss"), 10, ("P", "Q")),  # file order
        (("cauda-equina",), 10, ("URGENT",)),
    ],
)
def test_which_variants_apply(
    rules: Rules, present: tuple[str, ...], symptom_days: int, variants: tuple[str, ...]
) -> None:
    decision = assess(findings(present=present, symptom_days=symptom_days), rules)
    assert decision.variant_ids() == variants


@pytest.mark.parametrize(
    ("procedure", "appropriateness", "deciding"),
    [
        ("ct-lumbar-without-contrast", MBA, ["P"]),  # P MBA beats Q UNA
        ("mri-lumbar-without-and-with-contrast", UA, ["Q"]),  # Q UA beats P UNA
        ("mri-lumbar-with-contrast", UNA, ["P", "Q"]),  # a tie: every variant's cell decides
    ],
)
def test_each_procedure_takes_the_most_favourable_category_of_the_variants_that_apply(
    rules: Rules, procedure: str, appropriateness: Appropriateness, deciding: list[str]
) -> None:
    both = ["osteoporosis", "age-over-50", "unexplained-weight-loss"]
    (judgement,) = assess(findings(present=both, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.appropriateness is appropriateness
    assert [cell.variant for cell in judgement.cells] == deciding


def test_an_unknown_term_never_reads_as_false_and_names_the_variant_it_could_trigger(rules: Rules) -> None:
    decision = assess(findings(present=["age-over-50"], unknown=["unexplained-weight-loss"]), rules)
    assert decision.variant_ids() == ("S",)  # the verdict stands on what is known
    assert [possible.id for possible in decision.possible_variants] == ["Q"]
    assert decision.possible_variants[0].unchecked == ("unexplained-weight-loss",)


def test_ties_go_to_less_radiation_then_file_order(rules: Rules) -> None:
    """P rates X-ray and MRI without contrast alike: MRI spares radiation, so it is recommended."""
    decision = assess(findings(present=["osteoporosis"]), rules)
    assert decision.recommended is not None
    assert decision.recommended.procedure.id == "mri-lumbar-without-contrast"


def test_a_worse_order_is_offered_the_best_procedure_and_an_urgent_one_the_urgent_study(rules: Rules) -> None:
    better = assess(
        findings(present=["osteoporosis"], orders=[imaging_order("ct-lumbar-with-contrast")]), rules
    )
    (judgement,) = better.orders
    assert judgement.alternative is not None
    assert judgement.alternative.kind is AlternativeKind.BETTER
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-contrast"

    urgent = assess(
        findings(present=["cauda-equina"], orders=[imaging_order("ct-lumbar-without-contrast")]), rules
    )
    assert urgent.urgent
    (judgement,) = urgent.orders
    assert judgement.appropriateness is MBA
    assert judgement.alternative is not None
    assert judgement.alternative.kind is AlternativeKind.URGENT
    assert judgement.alternative.rating.procedure.id == rules.urgent.study
    assert judgement.alternative.urgent_flags == ("cauda-equina",)


def test_conservative_care_first_only_where_the_variant_says_so(rules: Rules) -> None:
    assert assess(findings(), rules).conservative_care_first
    assert not assess(findings(present=["osteoporosis"]), rules).conservative_care_first
