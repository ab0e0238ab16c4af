"""Code-list corrections from the physician-informaticist review (clinical review, lbp-imaging-cds, 2026-11).

Each correction comes as boundary pairs: a code that must count beside a close code that must not, read
through the whole mapping (`findings`) so the value set, the exclusions and the timing rules all apply.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import findings
from fhir_mappings.model import FlagStatus, RedFlag
from tests.support.fhir_records import AS_OF, SNOMED, condition, full_record, temperature, weight

PRESENT, ABSENT = FlagStatus.PRESENT, FlagStatus.ABSENT


def flag_of(flag_id: str, **record: Any) -> RedFlag:
    return findings(full_record(**record), [], AS_OF).red_flags[flag_id]


def pair(name: str, code: str, expected: FlagStatus, system: str | None = None, **dates: Any) -> Any:
    resource = condition(code, system, **dates) if system else condition(code, **dates)
    return pytest.param(resource, expected, id=f"{name}: {code} {expected}")


# 1. Cauda equina: only bladder/bowel codes that can mean loss of sphincter control or sensation.
CAUDA_EQUINA_PAIRS = [
    pair("fecal smearing counts", "R15.1", PRESENT, onset=3),
    pair("incomplete defecation does not", "R15.0", ABSENT, onset=3),
    pair("full fecal incontinence counts", "R15.9", PRESENT, onset=3),
    pair("fecal urgency does not", "R15.2", ABSENT, onset=3),
    pair("incontinence without sensory awareness counts", "N39.42", PRESENT, onset=3),
    pair("urge incontinence does not", "N39.41", ABSENT, onset=3),
    pair("continuous leakage counts", "N39.45", PRESENT, onset=3),
    pair("post-void dribbling does not", "N39.43", ABSENT, onset=3),
    pair("mixed incontinence counts", "N39.46", PRESENT, onset=3),
    pair("nocturnal enuresis does not", "N39.44", ABSENT, onset=3),
    pair("overflow incontinence counts", "N39.490", PRESENT, onset=3),
    pair("undotted urge incontinence does not", "N3941", ABSENT, onset=3),
    pair("other specified incontinence counts", "N39.498", PRESENT, onset=3),
    pair("unspecified urinary incontinence counts", "R32", PRESENT, onset=3),
    pair("drug-induced retention counts", "R33.0", PRESENT, onset=3),
]


@pytest.mark.parametrize(("resource", "expected"), CAUDA_EQUINA_PAIRS)
def test_cauda_equina_counts_only_loss_of_sphincter_control(
    resource: dict[str, Any], expected: FlagStatus
) -> None:
    assert flag_of("cauda-equina", conditions=[resource]).status is expected


def test_an_excluded_bladder_code_beside_a_kept_one_still_counts() -> None:
    # The exclusion removes a code, not the Condition: a second coding in the set still shows the sign.
    both = condition("N39.41", onset=2)
    both["code"]["coding"].append({"system": both["code"]["coding"][0]["system"], "code": "N39.42"})
    (evidence,) = flag_of("cauda-equina", conditions=[both]).evidence
    assert evidence.code == "N39.42"


# 2. Severe neurologic deficit coded only in SNOMED CT, under the same rule as ICD-10-CM: active, 30 days.
NEUROLOGIC_DEFICIT_PAIRS = [
    pair("foot drop SNOMED 30 days ago", "6077001", PRESENT, SNOMED, onset=30),
    pair("foot drop SNOMED 31 days ago", "6077001", ABSENT, SNOMED, onset=31),
    pair("paraplegia SNOMED recorded 30 days ago", "60389000", PRESENT, SNOMED, recorded=30),
    pair("paraplegia SNOMED recorded 31 days ago", "60389000", ABSENT, SNOMED, recorded=31),
    pair("paraparesis SNOMED active", "1845001", PRESENT, SNOMED, onset=5),
    pair("paraparesis SNOMED resolved", "1845001", ABSENT, SNOMED, onset=5, clinical="resolved"),
    pair("paraparesis SNOMED old onset, recorded recently", "1845001", ABSENT, SNOMED, onset=400, recorded=2),
    pair("foot drop SNOMED refuted", "6077001", ABSENT, SNOMED, onset=5, verification="refuted"),
    pair("ICD-10-CM foot drop 30 days ago", "M21.371", PRESENT, onset=30),
    pair("ICD-10-CM foot drop 31 days ago", "M21.372", ABSENT, onset=31),
]


@pytest.mark.parametrize(("resource", "expected"), NEUROLOGIC_DEFICIT_PAIRS)
def test_snomed_neurologic_deficits_follow_the_icd10_timing_rule(
    resource: dict[str, Any], expected: FlagStatus
) -> None:
    assert flag_of("severe-neurologic-deficit", conditions=[resource]).status is expected


def test_undated_snomed_neurologic_deficit_is_unknown_not_absent() -> None:
    flag = flag_of("severe-neurologic-deficit", conditions=[condition("60389000", SNOMED)])
    assert flag.status is FlagStatus.UNKNOWN


# 3. Immunosuppression: long-term immunosuppressant use (Z79.6-, FY2024), primary immunodeficiency D80-D83.
IMMUNOSUPPRESSION_PAIRS = [
    pair("unspecified immunosuppressant use", "Z79.620", PRESENT),
    pair("systemic steroid use is its own flag", "Z79.52", ABSENT),
    pair("immunomodulator use, undotted", "Z7961", PRESENT),
    pair("long-term NSAID use", "Z79.1", ABSENT),
    pair("other immunomodulators and immunosuppressants", "Z79.69", PRESENT),
    pair("immunosuppressant use no longer active", "Z79.69", ABSENT, clinical="resolved"),
    pair("X-linked agammaglobulinemia (range start)", "D80.0", PRESENT),
    pair("blood disease below the range", "D75.9", ABSENT),
    pair("common variable immunodeficiency (range end)", "D83.9", PRESENT),
    pair("sarcoidosis above D84", "D86.9", ABSENT),
    pair("severe combined immunodeficiency", "D81.9", PRESENT),
    # Mild or infant-only antibody defects and a metabolic disorder are not immunosuppression.
    pair("selective IgA deficiency", "D80.2", ABSENT),
    pair("selective IgG subclass deficiency", "D80.3", ABSENT),
    pair("transient hypogammaglobulinemia of infancy", "D80.7", ABSENT),
    pair("biotin-dependent carboxylase deficiency", "D81.810", ABSENT),
    pair("hyper-IgM immunodeficiency still counts", "D80.5", PRESENT),
    pair("Wiskott-Aldrich syndrome", "D82.0", PRESENT),
    pair("other immunodeficiency D84 still counts", "D84.9", PRESENT),
]


@pytest.mark.parametrize(("resource", "expected"), IMMUNOSUPPRESSION_PAIRS)
def test_immunosuppressant_therapy_and_primary_immunodeficiency(
    resource: dict[str, Any], expected: FlagStatus
) -> None:
    assert flag_of("immunosuppression", conditions=[resource]).status is expected


# 4. Fever: a coded fever with a benign non-infectious cause is not a spinal-infection sign.
FEVER_PAIRS = [
    pair("postprocedural fever", "R50.82", PRESENT, onset=2),
    pair("postvaccination fever", "R50.83", ABSENT, onset=2),
    pair("fever, unspecified", "R50.9", PRESENT, onset=2),
    pair("febrile nonhemolytic transfusion reaction", "R50.84", ABSENT, onset=2),
    pair("undotted postprocedural fever", "R5082", PRESENT, onset=2),
    pair("undotted postvaccination fever", "R5083", ABSENT, onset=2),
]


@pytest.mark.parametrize(("resource", "expected"), FEVER_PAIRS)
def test_fever_codes_with_a_benign_cause_do_not_count(resource: dict[str, Any], expected: FlagStatus) -> None:
    assert flag_of("fever", conditions=[resource]).status is expected


# 5. Evidence wording: units as a clinician reads them, values only from the cited resources, no cause
# the record does not give.
@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        pytest.param(38.4, "Cel", "38.4 °C", id="Cel"),
        pytest.param(101.5, "[degF]", "101.5 °F", id="degF"),
        pytest.param(38, "Cel", "38 °C", id="whole degrees as written"),
    ],
)
def test_temperature_evidence_shows_degree_symbols(value: float, unit: str, shown: str) -> None:
    (evidence,) = flag_of("fever", observations=[temperature(value, unit)]).evidence
    assert evidence.detail == shown


def test_temperature_unit_text_without_a_code_is_shown_as_a_symbol() -> None:
    reading = temperature(38.6, unit=None)
    reading["valueQuantity"]["unit"] = "celsius"
    (evidence,) = flag_of("fever", observations=[reading]).evidence
    assert evidence.detail == "38.6 °C"


@pytest.mark.parametrize(
    ("earlier", "later", "details"),
    [
        pytest.param(
            weight(180, "[lb_av]", when=150),
            weight(170, "[lb_av]", when=3),
            ("180 lb", "180 lb -> 170 lb (-5.6%) in 147 days, cause not recorded"),
            id="pounds shown as lb",
        ),
        pytest.param(
            weight(90, "kg", when=150),
            weight(187, "[lb_av]", when=3),
            ("90 kg", "90 kg -> 187 lb (-5.8%) in 147 days, cause not recorded"),
            id="mixed units each as recorded, never converted",
        ),
        pytest.param(
            weight(80000, "g", when=180),
            weight(75000, "g", when=0),
            ("80000 g", "80000 g -> 75000 g (-6.2%) in 180 days, cause not recorded"),
            id="grams, across the whole window",
        ),
    ],
)
def test_weight_loss_evidence_wording(
    earlier: dict[str, Any], later: dict[str, Any], details: tuple[str, str]
) -> None:
    flag = flag_of("unexplained-weight-loss", observations=[earlier, later])
    assert tuple(evidence.detail for evidence in flag.evidence) == details


def test_weight_loss_interval_is_a_range_when_a_date_is_partial() -> None:
    assert AS_OF.isoformat() == "2026-11-26"  # the later weight is on 2026-11-24
    september = weight(82, when="2026-09")  # any day from 1 to 30 September
    flag = flag_of("unexplained-weight-loss", observations=[september, weight(76, when=2)])
    assert flag.evidence[1].detail == "82 kg -> 76 kg (-7.3%) in 55 to 84 days, cause not recorded"


def test_no_evidence_detail_claims_a_cause_or_shows_a_ucum_code() -> None:
    readings = [temperature(101.5, "[degF]"), weight(200, "[lb_av]", when=100), weight(180, "[lb_av]")]
    result = findings(full_record(observations=readings), [], AS_OF)
    flags = ("fever", "unexplained-weight-loss")
    details = [e.detail or "" for flag in flags for e in result.red_flags[flag].evidence]
    assert details == ["101.5 °F", "200 lb", "200 lb -> 180 lb (-10.0%) in 99 days, cause not recorded"]
    for detail in details:
        assert "unexplained" not in detail.lower()
        assert not any(code in detail for code in ("Cel", "[degF]", "[lb_av]"))
