"""The pure engine: findings built by hand in, decision out, no Flask and no clock."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from fhir_mappings import findings as map_findings
from fhir_mappings import imaging_orders
from fhir_mappings.model import (
    PROCEDURE_IDS,
    RED_FLAG_IDS,
    DataGap,
    Evidence,
    FlagStatus,
    GapKind,
    InputKind,
    PatientRecord,
    RedFlag,
)
from service.rules import (
    Applicability,
    Appropriateness,
    Category,
    PamaRating,
    RatingWithheld,
    Rules,
    assess,
    load_rules,
)
from service.rules.decision import AlternativeKind, Merit

from .builders import AS_OF, ICD10, SNOMED, findings, imaging_order, service_request

UA = Appropriateness.USUALLY_APPROPRIATE
MBA = Appropriateness.MAY_BE_APPROPRIATE
UNA = Appropriateness.USUALLY_NOT_APPROPRIATE
NCA = Appropriateness.NO_CRITERIA_APPLY


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


# Each red flag alone, with a 10-day episode: the variant it triggers (None: a weak factor, no variant).
FLAG_VARIANTS: dict[str, str | None] = {
    "cauda-equina": "V4",
    "severe-neurologic-deficit": "neuro",
    "cancer-history": "V7",
    "spinal-infection": "V7",
    "fever": "V7",
    "iv-drug-use": "V7",
    "immunosuppression": "V7",
    "recent-trauma": "V6",
    "osteoporosis": "V6",
    "prolonged-corticosteroids": "V6",
    "age-over-70": "V6",
    "prior-lumbar-surgery": "V5",
    "age-over-50": None,
    "unexplained-weight-loss": None,
}


def test_the_table_covers_every_red_flag() -> None:
    assert set(FLAG_VARIANTS) == set(RED_FLAG_IDS)


@pytest.mark.parametrize(("flag", "variant"), FLAG_VARIANTS.items())
def test_each_red_flag_alone_triggers_its_variant(rules: Rules, flag: str, variant: str | None) -> None:
    decision = assess(findings(present=[flag]), rules)
    if variant is None:
        assert decision.variant_ids() == ("V1",)
        assert [factor.id for factor in decision.weak_factors] == [flag]
    else:
        assert decision.variant_ids() == (variant,)
        assert decision.variants[0].triggered_by == (flag,)
        assert decision.weak_factors == ()
    assert decision.red_flag_ids() == (flag,)
    assert decision.urgent is (flag in ("cauda-equina", "severe-neurologic-deficit"))


def test_no_red_flags_and_acute_pain_is_v1_and_conservative_care_first(rules: Rules) -> None:
    decision = assess(findings(symptom_days=41, orders=[imaging_order("mri-lumbar-without-contrast")]), rules)
    assert decision.variant_ids() == ("V1",)
    assert decision.conservative_care_first
    assert decision.recommended is None  # no imaging is appropriate
    (judgement,) = decision.orders
    assert judgement.appropriateness is UNA
    assert judgement.pama_rating is PamaRating.NOT_APPROPRIATE
    assert judgement.alternative is None
    assert judgement.conservative_care_first
    assert [(cell.variant, cell.provenance.value) for cell in judgement.cells] == [("V1", "verified")]


@pytest.mark.parametrize(("days", "variant"), [(41, "V1"), (42, "V2")])
def test_six_weeks_without_management_is_v2(rules: Rules, days: int, variant: str) -> None:
    decision = assess(findings(symptom_days=days), rules)
    assert decision.variant_ids() == (variant,)
    assert decision.variants[0].triggered_by == (("symptomDays>=42",) if variant == "V2" else ())


@pytest.mark.parametrize(("days", "variants"), [(41, ("V1",)), (42, ("V3",))])
def test_six_weeks_after_conservative_therapy_is_v3(
    rules: Rules, days: int, variants: tuple[str, ...]
) -> None:
    decision = assess(findings(symptom_days=days, therapy=True), rules)
    assert decision.variant_ids() == variants
    if variants == ("V3",):
        assert decision.variants[0].triggered_by == ("symptomDays>=42", "conservative-therapy")
        assert not decision.conservative_care_first


def test_v2_gives_way_to_any_red_flag_variant(rules: Rules) -> None:
    decision = assess(findings(symptom_days=60, present=["osteoporosis"]), rules)
    assert decision.variant_ids() == ("V6",)


@pytest.mark.parametrize(
    ("present", "days", "variant_ids"),
    [
        (["age-over-50", "unexplained-weight-loss"], 5, ("V7",)),
        (["age-over-50"], 28, ("V7",)),
        (["age-over-50"], 27, ("V1",)),
        (["unexplained-weight-loss"], 28, ("V7",)),
        (["unexplained-weight-loss"], 27, ("V1",)),
    ],
)
def test_two_weak_cancer_risk_factors_trigger_v7_one_does_not(
    rules: Rules, present: list[str], days: int, variant_ids: tuple[str, ...]
) -> None:
    decision = assess(findings(present=present, symptom_days=days), rules)
    assert decision.variant_ids() == variant_ids
    if variant_ids == ("V7",):
        expected = {*present, "symptomDays>=28"} if days >= 28 else set(present)
        assert set(decision.variants[0].triggered_by) == expected
        assert decision.weak_factors == ()  # they did trigger a variant
    else:
        assert [flag.id for flag in decision.weak_factors] == present


def test_a_weak_factor_is_reported_beside_an_unrelated_variant(rules: Rules) -> None:
    decision = assess(findings(present=["age-over-50", "age-over-70"]), rules)
    assert decision.variant_ids() == ("V6",)
    assert [flag.id for flag in decision.weak_factors] == ["age-over-50"]


@pytest.mark.parametrize(
    ("flag", "urgent_flags"),
    [
        ("cauda-equina", ("cauda-equina",)),
        ("severe-neurologic-deficit", ("severe-neurologic-deficit",)),
        ("cancer-history", ()),
    ],
)
def test_urgent_names_the_flags_that_make_it_so(
    rules: Rules, flag: str, urgent_flags: tuple[str, ...]
) -> None:
    decision = assess(findings(present=[flag]), rules)
    assert decision.urgent is bool(urgent_flags)
    assert decision.urgent_flags == urgent_flags


# Most favourable category among several variants. ------------------------------------------------------


@pytest.mark.parametrize(
    ("procedure", "appropriateness", "deciding"),
    [
        ("ct-lumbar-without-contrast", UA, ["V6"]),  # V4 may be, V6 usually
        ("xr-lumbar", UA, ["V6"]),  # V4 usually not, V6 usually
        ("mri-lumbar-without-and-with-contrast", UA, ["V4"]),  # V4 usually, V6 may be
        ("mri-lumbar-without-contrast", UA, ["V4", "V6"]),  # both usually: both cited
        ("ct-myelography-lumbar", MBA, ["V4", "V6"]),
        ("mri-lumbar-with-contrast", UNA, ["V4", "V6"]),
    ],
)
def test_each_procedure_takes_the_most_favourable_category_among_the_variants(
    rules: Rules, procedure: str, appropriateness: Appropriateness, deciding: list[str]
) -> None:
    decision = assess(
        findings(present=["cauda-equina", "osteoporosis"], orders=[imaging_order(procedure)]), rules
    )
    assert decision.variant_ids() == ("V4", "V6")
    (judgement,) = decision.orders
    assert judgement.appropriateness is appropriateness
    assert [cell.variant for cell in judgement.cells] == deciding
    assert {cell.category.value for cell in judgement.cells} == {appropriateness.value}


@pytest.mark.parametrize("variant_id", ["V1", "V2", "V3", "V4", "V5", "V6", "V7", "neuro"])
@pytest.mark.parametrize("procedure", PROCEDURE_IDS)
def test_every_cell_reaches_the_order_it_rates(rules: Rules, variant_id: str, procedure: str) -> None:
    trigger = {
        "V1": {},
        "V2": {"symptom_days": 50},
        "V3": {"symptom_days": 50, "therapy": True},
        "V4": {"present": ["cauda-equina"]},
        "V5": {"present": ["prior-lumbar-surgery"]},
        "V6": {"present": ["recent-trauma"]},
        "V7": {"present": ["spinal-infection"]},
        "neuro": {"present": ["severe-neurologic-deficit"]},
    }[variant_id]
    decision = assess(findings(orders=[imaging_order(procedure)], **trigger), rules)  # type: ignore[arg-type]
    assert decision.variant_ids() == (variant_id,)
    (judgement,) = decision.orders
    cell = rules.variants[variant_id].cells[procedure]
    assert judgement.appropriateness.value == cell.category.value
    assert judgement.cells == (cell,)
    expected_rating = (
        "not-appropriate" if cell.category is Category.USUALLY_NOT_APPROPRIATE else "appropriate"
    )
    assert judgement.pama_rating.value == expected_rating


# The best procedure per modality, and the better alternative. ------------------------------------------


def test_modalities_give_each_modality_its_best_procedure(rules: Rules) -> None:
    decision = assess(findings(present=["cancer-history"]), rules)
    summary = {
        modality: (rating.procedure.id, rating.appropriateness)
        for modality, rating in decision.modalities.items()
    }
    assert summary == {
        "XR": ("xr-lumbar", MBA),
        "MRI": ("mri-lumbar-without-contrast", UA),  # ties with without-and-with: file order
        "CT": (
            "ct-lumbar-without-contrast",
            MBA,
        ),  # ties with with-contrast (same radiation), beats myelography
    }
    assert decision.recommended is not None
    assert decision.recommended.procedure.id == "mri-lumbar-without-contrast"


def test_ct_with_contrast_for_suspected_cancer_has_mri_keeping_the_contrast_as_the_better_choice(
    rules: Rules,
) -> None:
    order = imaging_order("ct-lumbar-without-and-with-contrast")
    (judgement,) = assess(findings(present=["cancer-history"], orders=[order]), rules).orders
    assert judgement.appropriateness is UNA
    assert judgement.alternative is not None
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-and-with-contrast"
    assert judgement.alternative.rating.appropriateness is UA
    assert judgement.alternative.kind is AlternativeKind.BETTER
    assert judgement.alternative.ordered.appropriateness is UNA
    assert judgement.alternative.merits == (Merit.NO_RADIATION, Merit.KEEPS_CONTRAST)


@pytest.mark.parametrize(
    ("present", "procedure"),
    [
        (["osteoporosis"], "xr-lumbar"),  # V6: X-ray and MRI both usually appropriate
        (["recent-trauma"], "ct-lumbar-without-contrast"),  # V6
        (["prior-lumbar-surgery"], "xr-lumbar"),  # V5
        (["osteoporosis"], "mri-lumbar-without-contrast"),  # V6: X-ray is first-line, same category
    ],
)
def test_an_order_in_the_best_category_is_never_switched_to_another_of_that_category(
    rules: Rules, present: list[str], procedure: str
) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.appropriateness is UA
    assert judgement.alternative is None


def test_an_equally_appropriate_option_is_only_mentioned(rules: Rules) -> None:
    """X-ray for fracture risk: MRI spares radiation, but the order stands; it is only an option."""
    (judgement,) = assess(
        findings(present=["osteoporosis"], orders=[imaging_order("xr-lumbar")]), rules
    ).orders
    assert judgement.alternative is None
    assert judgement.equal_option is not None
    assert judgement.equal_option.rating.procedure.id == "mri-lumbar-without-contrast"
    assert judgement.equal_option.kind is AlternativeKind.EQUAL
    assert judgement.equal_option.merits == (Merit.NO_RADIATION,)
    assert judgement.first_line == "acp-2011"  # the order is the guideline's first-line test


def test_an_mri_for_fracture_risk_is_told_radiography_is_first_line(rules: Rules) -> None:
    (judgement,) = assess(
        findings(present=["osteoporosis"], orders=[imaging_order("mri-lumbar-without-contrast")]), rules
    ).orders
    assert judgement.alternative is None
    assert judgement.first_line is None
    assert judgement.equal_option is not None
    assert judgement.equal_option.rating.procedure.id == "xr-lumbar"
    assert Merit.FIRST_LINE in judgement.equal_option.merits
    assert judgement.equal_option.rating.first_line == "acp-2011"


@pytest.mark.parametrize(
    ("present", "recommended"),
    [
        (["osteoporosis"], "xr-lumbar"),  # ACP 2011: radiography first for compression-fracture risk
        (["osteoporosis", "prior-lumbar-surgery"], "xr-lumbar"),  # V5 rates it usually appropriate too
        (["osteoporosis", "cauda-equina"], "mri-lumbar-without-contrast"),  # V4 rates X-ray not appropriate
        (["osteoporosis", "cancer-history"], "mri-lumbar-without-contrast"),  # V7 rates X-ray may be
        (["prior-lumbar-surgery"], "mri-lumbar-without-contrast"),  # no first line: least radiation
    ],
)
def test_recommended_prefers_the_first_line_test_only_where_every_variant_rates_it_best(
    rules: Rules, present: list[str], recommended: str
) -> None:
    decision = assess(findings(present=present), rules)
    assert decision.recommended is not None
    assert decision.recommended.procedure.id == recommended


def test_a_worse_order_for_fracture_risk_is_offered_the_first_line_test(rules: Rules) -> None:
    (judgement,) = assess(
        findings(present=["osteoporosis"], orders=[imaging_order("ct-lumbar-with-contrast")]), rules
    ).orders
    assert judgement.appropriateness is UNA
    assert judgement.alternative is not None
    assert judgement.alternative.rating.procedure.id == "xr-lumbar"
    assert judgement.alternative.kind is AlternativeKind.BETTER
    assert judgement.alternative.merits == (Merit.FIRST_LINE,)  # the same radiation level as this CT


@pytest.mark.parametrize(
    ("present", "procedure"),
    [
        (["prior-lumbar-surgery"], "mri-lumbar-without-and-with-contrast"),
        (["cancer-history"], "mri-lumbar-without-contrast"),
    ],
)
def test_the_best_choice_has_no_alternative(rules: Rules, present: list[str], procedure: str) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.appropriateness is UA
    assert judgement.alternative is None


def test_ties_on_category_and_radiation_prefer_the_ordered_modality(rules: Rules) -> None:
    """With MRI out of the best category, X-ray and CT tie: a CT order is offered CT, an MRI order X-ray."""
    variant = rules.variants["V6"]
    cells = dict(variant.cells)
    cells["mri-lumbar-without-contrast"] = replace(
        cells["mri-lumbar-without-contrast"], category=Category.MAY_BE_APPROPRIATE
    )
    edited = replace(rules, variants={**rules.variants, "V6": replace(variant, cells=cells, first_line=None)})
    orders = [
        imaging_order("ct-lumbar-with-contrast", "ct"),
        imaging_order("mri-lumbar-with-contrast", "mri"),
    ]
    ct, mri = assess(findings(present=["recent-trauma"], orders=orders), edited).orders
    assert ct.alternative is not None
    assert ct.alternative.rating.procedure.id == "ct-lumbar-without-contrast"
    assert mri.alternative is not None
    assert mri.alternative.rating.procedure.id == "xr-lumbar"  # first in the file among the tied


# An order with IV contrast keeps it; an urgent patient is offered the urgent study. ---------------------


def test_mri_with_contrast_for_suspected_cancer_is_steered_to_mri_without_and_with_contrast(
    rules: Rules,
) -> None:
    """ACR V7 rates MRI without and with contrast usually appropriate: the study for abscess or tumour."""
    order = imaging_order("mri-lumbar-with-contrast")
    (judgement,) = assess(findings(present=["cancer-history"], orders=[order]), rules).orders
    assert judgement.appropriateness is UNA
    assert judgement.alternative is not None
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-and-with-contrast"
    assert judgement.alternative.merits == (Merit.KEEPS_CONTRAST,)  # same radiation, not first line
    assert not judgement.alternative.urgent


def test_the_contrast_preference_reads_the_procedures_iv_contrast_attribute(rules: Rules) -> None:
    """Data, not ids: a file saying MRI without and with contrast gives none steers to MRI without."""
    procedure = rules.procedures["mri-lumbar-without-and-with-contrast"]
    edited = replace(
        rules, procedures={**rules.procedures, procedure.id: replace(procedure, iv_contrast=False)}
    )
    order = imaging_order("mri-lumbar-with-contrast")
    (judgement,) = assess(findings(present=["cancer-history"], orders=[order]), edited).orders
    assert judgement.alternative is not None
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-contrast"


@pytest.mark.parametrize(
    ("present", "procedure", "alternative"),
    [
        # No CT with IV contrast is usually appropriate in V7, but MRI without and with contrast is, and
        # it keeps the contrast: the modality is a tie-break, never a condition.
        (["cancer-history"], "ct-lumbar-with-contrast", "mri-lumbar-without-and-with-contrast"),
        (["cancer-history"], "ct-lumbar-without-and-with-contrast", "mri-lumbar-without-and-with-contrast"),
        (["spinal-infection"], "ct-lumbar-with-contrast", "mri-lumbar-without-and-with-contrast"),
        # V6 rates MRI without and with contrast only may be appropriate: the first-line X-ray.
        (["osteoporosis"], "mri-lumbar-with-contrast", "xr-lumbar"),
        (["prior-lumbar-surgery"], "mri-lumbar-with-contrast", "mri-lumbar-without-and-with-contrast"),
        # An order without contrast is never pushed to a contrast study.
        (["cancer-history"], "xr-lumbar", "mri-lumbar-without-contrast"),
    ],
)
def test_the_contrast_preference_keeps_contrast_in_the_best_category_of_any_modality(
    rules: Rules, present: list[str], procedure: str, alternative: str
) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.alternative is not None
    assert judgement.alternative.rating.procedure.id == alternative


@pytest.mark.parametrize(
    ("present", "procedure"),
    [
        (["cauda-equina"], "mri-lumbar-with-contrast"),  # the urgent study, not the contrast one
        (["cauda-equina", "cancer-history"], "mri-lumbar-with-contrast"),
        (["severe-neurologic-deficit"], "xr-lumbar"),
        (["cauda-equina"], "ct-myelography-lumbar"),
        # CT is usually appropriate for the fracture risk, only may be for cauda equina: MRI, urgently.
        (["cauda-equina", "osteoporosis"], "ct-lumbar-without-contrast"),
    ],
)
def test_an_urgent_order_that_is_not_right_for_the_urgency_is_offered_the_urgent_study(
    rules: Rules, present: list[str], procedure: str
) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.alternative is not None
    assert judgement.alternative.urgent
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-contrast"
    assert judgement.alternative.rating.appropriateness is UA
    assert judgement.alternative.kind is AlternativeKind.URGENT
    assert judgement.alternative.urgent_flags
    assert judgement.equal_option is None  # the urgent study is said once


def test_the_urgent_study_reason_names_the_flag_its_source_and_the_orders_rating_for_it(
    rules: Rules,
) -> None:
    order = imaging_order("ct-lumbar-without-contrast")
    decision = assess(findings(present=["cauda-equina", "osteoporosis"], orders=[order]), rules)
    (judgement,) = decision.orders
    assert judgement.appropriateness is UA  # V6 rates it so; V4 only may be appropriate
    assert judgement.alternative is not None
    assert judgement.alternative.kind is AlternativeKind.URGENT
    assert judgement.alternative.urgent_flags == ("cauda-equina",)
    # compared with the order's rating on the urgent variant alone (V4), not its overall category
    assert judgement.alternative.ordered.appropriateness is Appropriateness.MAY_BE_APPROPRIATE
    assert judgement.alternative.merits == (Merit.NO_RADIATION,)


@pytest.mark.parametrize(
    ("present", "procedure"),
    [
        (["cauda-equina"], "mri-lumbar-without-contrast"),
        (["cauda-equina"], "mri-lumbar-without-and-with-contrast"),  # also usually appropriate in V4
        (["severe-neurologic-deficit", "cancer-history"], "mri-lumbar-without-and-with-contrast"),
    ],
)
def test_an_urgent_order_usually_appropriate_for_the_urgency_is_left_alone(
    rules: Rules, present: list[str], procedure: str
) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.alternative is None


# Unknown inputs: never read as absent. -----------------------------------------------------------------


def test_an_unchecked_red_flag_is_reported_and_the_verdict_stands_on_what_is_known(rules: Rules) -> None:
    gap = DataGap("observations-not-supplied", GapKind.NOT_SUPPLIED, ("fever",), InputKind.OBSERVATIONS)
    order = imaging_order("mri-lumbar-without-contrast")
    decision = assess(findings(unknown=["fever"], gaps=[gap], orders=[order]), rules)
    assert decision.variant_ids() == ("V1",)
    assert [flag.id for flag in decision.unchecked_flags] == ["fever"]
    assert "fever" not in decision.red_flag_ids()
    assert [(possible.id, possible.unchecked) for possible in decision.possible_variants] == [
        ("V7", ("fever",))
    ]
    (judgement,) = decision.orders
    assert judgement.appropriateness is UNA
    assert judgement.if_unchecked_present is UA  # MRI would be usually appropriate with a fever
    assert decision.data_gaps == (gap,)


def test_an_unchecked_flag_that_would_not_change_the_rating_is_not_reported_as_a_change(rules: Rules) -> None:
    order = imaging_order("mri-lumbar-with-contrast")  # usually not appropriate in every variant
    (judgement,) = assess(findings(unknown=["fever"], orders=[order]), rules).orders
    assert judgement.if_unchecked_present is None


def test_an_unchecked_urgent_flag_is_named_but_not_urgent(rules: Rules) -> None:
    decision = assess(findings(unknown=["cauda-equina"]), rules)
    assert decision.urgent is False
    assert decision.urgent_unchecked == ("cauda-equina",)


def test_one_weak_factor_and_an_unchecked_one_make_v7_possible(rules: Rules) -> None:
    decision = assess(findings(present=["age-over-50"], unknown=["unexplained-weight-loss"]), rules)
    assert decision.variant_ids() == ("V1",)
    assert [(possible.id, possible.unchecked) for possible in decision.possible_variants] == [
        ("V7", ("unexplained-weight-loss",))
    ]


@pytest.mark.parametrize(("therapy", "possible"), [(True, "V3"), (False, "V2")])
def test_unknown_symptom_duration_makes_the_six_week_variant_possible(
    rules: Rules, therapy: bool, possible: str
) -> None:
    decision = assess(findings(symptom_days=None, therapy=therapy), rules)
    assert decision.variant_ids() == ("V1",)
    assert [(variant.id, variant.unchecked) for variant in decision.possible_variants] == [
        (possible, ("symptomDays>=42",))
    ]


def test_therapy_that_could_not_be_checked_keeps_v2_and_makes_v3_possible(rules: Rules) -> None:
    gap = DataGap("procedures-not-supplied", GapKind.NOT_SUPPLIED, ("therapy",), InputKind.PROCEDURES)
    order = imaging_order("mri-lumbar-without-contrast")
    decision = assess(findings(symptom_days=60, gaps=[gap], orders=[order]), rules)
    assert decision.variant_ids() == ("V2",)
    assert [(possible.id, possible.unchecked) for possible in decision.possible_variants] == [
        ("V3", ("conservative-therapy",))
    ]
    assert decision.orders[0].if_unchecked_present is UA


def test_a_red_flag_missing_from_the_findings_counts_as_unchecked(rules: Rules) -> None:
    partial = findings()
    flags = {flag_id: flag for flag_id, flag in partial.red_flags.items() if flag_id != "fever"}
    decision = assess(replace(partial, red_flags=flags), rules)
    assert [possible.id for possible in decision.possible_variants] == ["V7"]


# Applicability. ----------------------------------------------------------------------------------------


def test_an_order_for_another_reason_without_back_pain_has_no_criteria(rules: Rules) -> None:
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, present=["cancer-history"], orders=[order]), rules)
    assert not decision.criteria_apply
    assert decision.variants == ()
    assert decision.recommended is None
    assert {rating.appropriateness for rating in decision.modalities.values()} == {NCA}
    (judgement,) = decision.orders
    assert not judgement.applicable
    assert judgement.appropriateness is NCA
    assert judgement.pama_rating is PamaRating.NO_CRITERIA_APPLY
    assert judgement.cells == ()
    assert judgement.alternative is None


@pytest.mark.parametrize("present", [["cauda-equina"], ["severe-neurologic-deficit"]])
def test_an_urgent_patients_order_without_criteria_is_offered_the_urgent_study(
    rules: Rules, present: list[str]
) -> None:
    """Urgency does not depend on the criteria: the order keeps no-criteria-apply, and the urgent study,
    judged on the urgent variants alone, is offered in its place."""
    order = imaging_order("ct-lumbar-with-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, present=present, orders=[order]), rules)
    assert decision.urgent
    assert decision.variants == ()  # the criteria still do not apply to the patient
    (judgement,) = decision.orders
    assert not judgement.applicable
    assert judgement.appropriateness is NCA
    assert judgement.cells == ()
    assert judgement.alternative is not None
    assert judgement.alternative.urgent
    assert judgement.alternative.rating.procedure.id == "mri-lumbar-without-contrast"
    assert judgement.alternative.rating.appropriateness is UA
    cells = judgement.alternative.rating.cells
    assert cells
    assert {cell.variant for cell in cells} <= {"V4", "neuro"}  # the urgent variants' cells cite it
    assert judgement.alternative.kind is AlternativeKind.URGENT
    assert judgement.alternative.ordered.procedure.id == "ct-lumbar-with-contrast"


def test_an_urgent_patients_order_of_the_urgent_study_without_criteria_gets_no_alternative(
    rules: Rules,
) -> None:
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, present=["cauda-equina"], orders=[order]), rules)
    (judgement,) = decision.orders
    assert judgement.appropriateness is NCA
    assert judgement.alternative is None


def test_an_order_whose_reason_names_low_back_pain_is_judged_without_a_recorded_episode(rules: Rules) -> None:
    order = imaging_order("ct-lumbar-without-contrast", reason_lbp=True)
    decision = assess(findings(episode_active=False, orders=[order]), rules)
    assert decision.criteria_apply
    assert decision.variant_ids() == ("V1",)
    assert decision.orders[0].appropriateness is UNA


def test_an_order_whose_reason_names_a_red_flag_is_judged_on_that_flag(rules: Rules) -> None:
    """The mappings make an order-reason red flag present with the order as evidence (see below)."""
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False, reason_flags=("cauda-equina",))
    given = findings(episode_active=False, orders=[order])
    evidence = Evidence("ServiceRequest/o1", detail="named as the reason for this order")
    flags = {**given.red_flags, "cauda-equina": RedFlag("cauda-equina", FlagStatus.PRESENT, (evidence,))}
    decision = assess(replace(given, red_flags=flags), rules)
    assert decision.variant_ids() == ("V4",)
    assert decision.urgent
    assert decision.red_flags == (flags["cauda-equina"],)
    assert decision.orders[0].appropriateness is UA


def test_the_engine_takes_red_flags_from_the_findings_only(rules: Rules) -> None:
    """No second copy of the mappings' order-reason rule: the findings are the single source."""
    order = imaging_order("mri-lumbar-without-contrast", reason_flags=("fever",))
    given = findings(present=["fever"], orders=[order])
    decision = assess(given, rules)
    assert decision.red_flags == (given.red_flags["fever"],)
    assert [evidence.reference for evidence in decision.red_flags[0].evidence] == ["Condition/fever"]


SR = "ServiceRequest"
CAUDA_EQUINA_REASON = {
    "coding": [{"system": SNOMED, "code": "192970008", "display": "Cauda equina syndrome"}]
}


@pytest.mark.parametrize(
    ("reason", "contained"),
    [
        ({"reasonCode": [CAUDA_EQUINA_REASON]}, []),
        ({"reasonReference": [{"reference": "Condition/ce"}]}, []),
        ({"reasonReference": [{"reference": "#ce"}]}, [{"resourceType": "Condition", "id": "ce",
                                                         "code": CAUDA_EQUINA_REASON}]),
    ],
    ids=["reasonCode", "reasonReference", "contained"],
)  # fmt: skip
def test_the_mappings_already_make_order_reason_flags_present_with_the_order_as_evidence(
    reason: dict[str, Any], contained: list[dict[str, Any]]
) -> None:
    """Why the engine no longer adds order-reason flags itself: the real mappings already do."""
    condition = {
        "resourceType": "Condition",
        "id": "ce",
        "code": CAUDA_EQUINA_REASON,
        "clinicalStatus": {"coding": [{"code": "resolved"}]},  # resolved: not a red flag on its own
        "subject": {"reference": "Patient/p1"},
    }
    resource = service_request("img", "mri-lumbar-without-contrast")
    del resource["reasonCode"]
    resource.update(reason)
    if contained:
        resource["contained"] = contained
    orders = imaging_orders({"resourceType": "Bundle", "entry": [{"resource": resource}]})
    record = PatientRecord(patient=PATIENT, conditions=[condition])
    mapped = map_findings(record, orders, AS_OF)
    (order,) = mapped.orders
    assert order.reason_red_flags == ("cauda-equina",)
    flag = mapped.red_flags["cauda-equina"]
    assert flag.status is FlagStatus.PRESENT
    assert [evidence.reference for evidence in flag.evidence] == [f"{SR}/img"]
    decision = assess(mapped, load_rules())
    assert decision.red_flags == (flag,)
    assert decision.urgent


def test_a_procedure_the_rules_do_not_know_has_no_criteria(rules: Rules) -> None:
    order = replace(imaging_order("xr-lumbar"), procedure="pet-lumbar")
    (judgement,) = assess(findings(orders=[order]), rules).orders
    assert judgement.procedure is None
    assert judgement.appropriateness is NCA


# The low back pain diagnosis could not be read: judged as if criteria apply, never "no criteria". -------

UNREADABLE_LBP = DataGap(
    "records-unreadable", GapKind.RECORDS_SKIPPED, ("episode",), problem="unreadable", count=1
)
NO_ACTIVE_LBP = DataGap("no-active-low-back-pain", GapKind.NO_ACTIVE_LOW_BACK_PAIN, ("episode", "therapy"))
CONDITIONS_INCOMPLETE = DataGap(
    "conditions-incomplete",
    GapKind.INCOMPLETE,
    ("cauda-equina", "episode", "therapy"),
    InputKind.CONDITIONS,
)


@pytest.mark.parametrize("gaps", [[UNREADABLE_LBP, NO_ACTIVE_LBP], [CONDITIONS_INCOMPLETE, NO_ACTIVE_LBP]])
def test_an_unreadable_episode_with_cauda_equina_is_judged_and_urgent(
    rules: Rules, gaps: list[DataGap]
) -> None:
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(
        findings(episode_active=False, present=["cauda-equina"], gaps=gaps, orders=[order]), rules
    )
    assert decision.episode_undetermined
    assert decision.criteria_apply
    assert decision.urgent
    assert decision.variant_ids() == ("V4",)
    (judgement,) = decision.orders
    assert judgement.applicability is Applicability.UNDETERMINED
    assert judgement.applicable  # judged as if criteria apply: the safer reading
    assert judgement.appropriateness is UA
    assert judgement.rating_withheld is RatingWithheld.LOW_BACK_PAIN_UNCONFIRMED


def test_no_active_low_back_pain_in_a_complete_record_still_has_no_criteria(rules: Rules) -> None:
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, gaps=[NO_ACTIVE_LBP], orders=[order]), rules)
    assert not decision.episode_undetermined
    (judgement,) = decision.orders
    assert judgement.applicability is Applicability.NOT_APPLICABLE
    assert judgement.appropriateness is NCA
    assert judgement.rating_withheld is None


def test_an_order_whose_reason_names_low_back_pain_applies_whatever_the_record(rules: Rules) -> None:
    order = imaging_order("xr-lumbar", reason_lbp=True)
    decision = assess(findings(episode_active=False, gaps=[UNREADABLE_LBP], orders=[order]), rules)
    assert decision.orders[0].applicability is Applicability.APPLIES
    assert decision.orders[0].rating_withheld is None


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1985-01-01"}  # 40: no age flag
LBP_CONDITION = {
    "resourceType": "Condition",
    "id": "lbp",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "code": "active"}]},
    "code": {"coding": [{"system": ICD10, "code": "M54.50"}]},
    "subject": {"reference": "Patient/p1"},
    "onsetDateTime": "2025-05-20",
}  # fmt: skip
UNREADABLE_LBP_CONDITION = {**LBP_CONDITION, "onsetDateTime": "2025-05-20T10:00:00"}


@pytest.mark.parametrize(
    ("record", "applicability"),
    [
        (PatientRecord(patient=PATIENT, conditions=[LBP_CONDITION]), Applicability.APPLIES),
        (PatientRecord(patient=PATIENT, conditions=[]), Applicability.NOT_APPLICABLE),
        # onsetDateTime with a time but no timezone fails FHIR R4B validation: the Condition is skipped.
        (PatientRecord(patient=PATIENT, conditions=[UNREADABLE_LBP_CONDITION]), Applicability.UNDETERMINED),
        (PatientRecord(patient=PATIENT), Applicability.UNDETERMINED),  # Conditions not supplied
        (PatientRecord(patient=PATIENT, conditions=[], incomplete={InputKind.CONDITIONS}),
         Applicability.UNDETERMINED),  # truncated
    ],
    ids=["active", "none", "unreadable", "not-supplied", "incomplete"],
)  # fmt: skip
def test_applicability_from_what_the_real_mappings_report(
    rules: Rules, record: PatientRecord, applicability: Applicability
) -> None:
    """Pins the mappings' data gaps the engine reads, so a change in them cannot go unnoticed."""
    resource = service_request("img", "mri-lumbar-without-contrast", reasonCode=[])
    orders = imaging_orders({"resourceType": "Bundle", "entry": [{"resource": resource}]})
    decision = assess(map_findings(record, orders, AS_OF), rules)
    assert decision.orders[0].applicability is applicability
    assert decision.episode_undetermined is (applicability is Applicability.UNDETERMINED)


# Rating withheld when unchecked data would change it. ---------------------------------------------------


def test_the_rating_is_withheld_when_unchecked_data_would_change_it(rules: Rules) -> None:
    order = imaging_order("mri-lumbar-without-contrast")  # not appropriate in V1, appropriate with a fever
    (judgement,) = assess(findings(unknown=["fever"], orders=[order]), rules).orders
    assert judgement.if_unchecked_present is UA
    assert judgement.rating_withheld is RatingWithheld.UNCHECKED_DATA


def test_the_rating_stands_when_unchecked_data_would_not_change_the_pama_code(rules: Rules) -> None:
    """CT without contrast: may be appropriate in V7, usually with a fracture: "appropriate" either way."""
    order = imaging_order("ct-lumbar-without-contrast")
    (judgement,) = assess(
        findings(present=["cancer-history"], unknown=["osteoporosis"], orders=[order]), rules
    ).orders
    assert (judgement.appropriateness, judgement.if_unchecked_present) == (MBA, UA)
    assert judgement.rating_withheld is None


# Purity. -----------------------------------------------------------------------------------------------


def test_assess_is_deterministic_and_leaves_its_input_alone(rules: Rules) -> None:
    order = imaging_order("ct-lumbar-without-and-with-contrast")
    resource_before = copy.deepcopy(dict(order.resource))
    given = findings(present=["cancer-history", "age-over-50"], unknown=["fever"], orders=[order])
    first, second = assess(given, rules), assess(given, rules)
    assert first == second
    assert dict(order.resource) == resource_before
