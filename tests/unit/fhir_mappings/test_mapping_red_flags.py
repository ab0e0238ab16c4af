"""Every row of the red-flag table (knowledge/red-flag-criteria.yaml), with its traps and boundary pairs."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import findings
from fhir_mappings.model import FlagStatus, GapKind, InputKind, RedFlag
from service.wording.gaps import gap_description
from tests.support.fhir_records import (
    AS_OF,
    SNOMED,
    birth_date_for_age,
    condition,
    drug,
    full_record,
    medication_request,
    medication_statement,
    patient,
    procedure,
    temperature,
    weight,
)

PRESENT, ABSENT, UNKNOWN = FlagStatus.PRESENT, FlagStatus.ABSENT, FlagStatus.UNKNOWN


def flag_of(flag_id: str, **record: Any) -> RedFlag:
    return findings(full_record(**record), [], AS_OF).red_flags[flag_id]


def case(name: str, flag_id: str, expected: FlagStatus, **record: Any) -> Any:
    return pytest.param(flag_id, expected, record, id=name)


CONDITION_ROWS = [
    # cauda-equina: active G83.4 at any date; bladder/bowel signs within 30 days
    case("G83.4 active ten years ago", "cauda-equina", PRESENT, conditions=[condition("G83.4", onset=3650)]),
    case("G83.4 resolved", "cauda-equina", ABSENT, conditions=[condition("G83.4", clinical="resolved")]),
    case("cauda equina SNOMED", "cauda-equina", PRESENT, conditions=[condition("192970008", SNOMED)]),
    case("urinary retention 30 days ago", "cauda-equina", PRESENT, conditions=[condition("R33.9", onset=30)]),
    case("urinary retention 31 days ago", "cauda-equina", ABSENT, conditions=[condition("R33.9", onset=31)]),
    # The onset decides; the recorded date stands in only when there is no onset (the table's trap: "an
    # incontinence that began years ago").
    case(
        "incontinence old onset, recorded recently",
        "cauda-equina",
        ABSENT,
        conditions=[condition("R32", onset=700, recorded=10)],
    ),
    case(
        "incontinence recent onset, recorded long ago",
        "cauda-equina",
        PRESENT,
        conditions=[condition("R32", onset=10, recorded=700)],
    ),
    case(
        "incontinence no onset, recorded recently",
        "cauda-equina",
        PRESENT,
        conditions=[condition("R32", recorded=10)],
    ),
    case(
        "foot drop old onset, recorded recently",
        "severe-neurologic-deficit",
        ABSENT,
        conditions=[condition("M21.371", onset=3650, recorded=7)],
    ),
    case(
        "fall years ago, recorded recently",
        "recent-trauma",
        ABSENT,
        conditions=[condition("W19.XXXA", onset=3650, recorded=7)],
    ),
    case(
        "fever onset 8 days ago, recorded today",
        "fever",
        ABSENT,
        conditions=[condition("R50.9", onset=8, recorded=0)],
    ),
    case(
        "incontinence without sensory awareness N39.42 (child of N39.4)",
        "cauda-equina",
        PRESENT,
        conditions=[condition("N39.42", onset=3)],
    ),
    # Urge incontinence is carved out of N39.4- (clinical review, lbp-imaging-cds, 2026-11).
    case(
        "urge incontinence N39.41 excluded", "cauda-equina", ABSENT, conditions=[condition("N39.41", onset=3)]
    ),
    case("fecal incontinence R15.9", "cauda-equina", PRESENT, conditions=[condition("R15.9", recorded=2)]),
    case(
        "fecal incontinence SNOMED",
        "cauda-equina",
        PRESENT,
        conditions=[condition("72042002", SNOMED, onset=2)],
    ),
    case(
        "retention onset a partial month that may be recent",
        "cauda-equina",
        PRESENT,
        conditions=[condition("R33.8", onset=AS_OF.strftime("%Y-%m"))],
    ),
    case(
        "incontinence resolved last week still a new sign",
        "cauda-equina",
        PRESENT,
        conditions=[condition("R32", clinical="resolved", onset=7)],
    ),
    case(
        "retention refuted",
        "cauda-equina",
        ABSENT,
        conditions=[condition("R33.9", onset=1, verification="refuted")],
    ),
    # severe-neurologic-deficit: active, within 30 days
    case(
        "foot drop 30 days", "severe-neurologic-deficit", PRESENT, conditions=[condition("M21.371", onset=30)]
    ),
    case(
        "foot drop 31 days", "severe-neurologic-deficit", ABSENT, conditions=[condition("M21.371", onset=31)]
    ),
    case(
        "foot drop resolved",
        "severe-neurologic-deficit",
        ABSENT,
        conditions=[condition("M21.372", onset=3, clinical="resolved")],
    ),
    case(
        "paraparesis G82.21", "severe-neurologic-deficit", PRESENT, conditions=[condition("G82.21", onset=3)]
    ),
    case(
        "monoplegia G83.12",
        "severe-neurologic-deficit",
        PRESENT,
        conditions=[condition("G83.12", recorded=1)],
    ),
    # cancer-history: any status, any date, with exclusions
    case("bone metastasis", "cancer-history", PRESENT, conditions=[condition("C79.51", onset=40)]),
    case(
        "breast cancer resolved years ago",
        "cancer-history",
        PRESENT,
        conditions=[condition("C50.911", clinical="resolved", onset=5000)],
    ),
    case("undotted C7951", "cancer-history", PRESENT, conditions=[condition("C7951")]),
    case("lower-case dotted c79.51", "cancer-history", PRESENT, conditions=[condition("c79.51")]),
    case("Merkel cell C4A.9 in range", "cancer-history", PRESENT, conditions=[condition("C4A.9")]),
    case("myeloma C90.00 in range end", "cancer-history", PRESENT, conditions=[condition("C90.00")]),
    case("basal cell C44.91 excluded", "cancer-history", ABSENT, conditions=[condition("C44.91")]),
    case("D03 melanoma in situ outside range", "cancer-history", ABSENT, conditions=[condition("D03.9")]),
    case("history of breast cancer Z85.3", "cancer-history", PRESENT, conditions=[condition("Z85.3")]),
    case(
        "history of skin cancer Z85.828 excluded", "cancer-history", ABSENT, conditions=[condition("Z85.828")]
    ),
    case(
        "refuted cancer", "cancer-history", ABSENT, conditions=[condition("C50.911", verification="refuted")]
    ),
    case(
        "cancer entered in error",
        "cancer-history",
        ABSENT,
        conditions=[condition("C61", verification="entered-in-error")],
    ),
    case(
        "history of malignant neoplasm SNOMED",
        "cancer-history",
        PRESENT,
        conditions=[condition("266987004", SNOMED)],
    ),
    case(
        "malignant neoplastic disease SNOMED",
        "cancer-history",
        PRESENT,
        conditions=[condition("363346000", SNOMED)],
    ),
    case(
        "ICD-9 coding ignored",
        "cancer-history",
        ABSENT,
        conditions=[condition("174.9", "http://hl7.org/fhir/sid/icd-9-cm")],
    ),
    # unexplained-weight-loss (Conditions)
    case(
        "R63.4 recorded 180 days ago",
        "unexplained-weight-loss",
        PRESENT,
        conditions=[condition("R63.4", recorded=180)],
    ),
    case(
        "R63.4 recorded 181 days ago",
        "unexplained-weight-loss",
        ABSENT,
        conditions=[condition("R63.4", recorded=181)],
    ),
    case(
        "weight loss SNOMED 448765001",
        "unexplained-weight-loss",
        PRESENT,
        conditions=[condition("448765001", SNOMED, onset=20)],
    ),
    case(
        "weight loss inactive",
        "unexplained-weight-loss",
        ABSENT,
        conditions=[condition("R63.4", recorded=20, clinical="inactive")],
    ),
    # fever (Conditions)
    case("R50.9 onset 7 days ago", "fever", PRESENT, conditions=[condition("R50.9", onset=7)]),
    case("R50.9 onset 8 days ago", "fever", ABSENT, conditions=[condition("R50.9", onset=8)]),
    case("fever SNOMED", "fever", PRESENT, conditions=[condition("386661006", SNOMED, recorded=0)]),
    # iv-drug-use: active, or recorded within 365 days
    case(
        "opioid dependence active, old", "iv-drug-use", PRESENT, conditions=[condition("F11.20", onset=4000)]
    ),
    case(
        "opioid use resolved, recorded 365 days ago",
        "iv-drug-use",
        PRESENT,
        conditions=[condition("F11.20", clinical="resolved", recorded=365)],
    ),
    case(
        "opioid use resolved, recorded 366 days ago",
        "iv-drug-use",
        ABSENT,
        conditions=[condition("F11.20", clinical="resolved", recorded=366)],
    ),
    case("sedative use F13.10", "iv-drug-use", PRESENT, conditions=[condition("F13.10")]),
    case("cocaine use new child code", "iv-drug-use", PRESENT, conditions=[condition("F14.90")]),
    case("intravenous drug user SNOMED", "iv-drug-use", PRESENT, conditions=[condition("228388006", SNOMED)]),
    case("alcohol F10.20 is not IV drug use", "iv-drug-use", ABSENT, conditions=[condition("F10.20")]),
    # immunosuppression: active
    case("HIV disease", "immunosuppression", PRESENT, conditions=[condition("B20")]),
    case("HIV B97.35", "immunosuppression", PRESENT, conditions=[condition("B97.35")]),
    case("kidney transplant status", "immunosuppression", PRESENT, conditions=[condition("Z94.0")]),
    case("drug-induced immunodeficiency", "immunosuppression", PRESENT, conditions=[condition("D84.821")]),
    case(
        "immunosuppression SNOMED", "immunosuppression", PRESENT, conditions=[condition("38013005", SNOMED)]
    ),
    case(
        "transplant status inactive",
        "immunosuppression",
        ABSENT,
        conditions=[condition("Z94.0", clinical="inactive")],
    ),
    # spinal-infection: active
    case("vertebral osteomyelitis lumbar", "spinal-infection", PRESENT, conditions=[condition("M46.26")]),
    case("discitis lumbosacral", "spinal-infection", PRESENT, conditions=[condition("M46.47")]),
    case("intraspinal abscess", "spinal-infection", PRESENT, conditions=[condition("G06.1")]),
    case("tuberculosis of spine", "spinal-infection", PRESENT, conditions=[condition("A17.81")]),
    case(
        "osteomyelitis resolved",
        "spinal-infection",
        ABSENT,
        conditions=[condition("M46.26", clinical="resolved")],
    ),
    # prolonged-corticosteroids (Condition)
    case("Z79.52 active", "prolonged-corticosteroids", PRESENT, conditions=[condition("Z79.52")]),
    case(
        "Z79.52 resolved",
        "prolonged-corticosteroids",
        ABSENT,
        conditions=[condition("Z79.52", clinical="resolved")],
    ),
    # osteoporosis: any status but refuted / entered-in-error
    case("age-related osteoporosis", "osteoporosis", PRESENT, conditions=[condition("M81.0")]),
    case(
        "osteoporotic vertebral fracture, inactive",
        "osteoporosis",
        PRESENT,
        conditions=[condition("M80.08XA", clinical="inactive")],
    ),
    case("osteoporosis SNOMED", "osteoporosis", PRESENT, conditions=[condition("64859006", SNOMED)]),
    case(
        "osteoporosis refuted",
        "osteoporosis",
        ABSENT,
        conditions=[condition("M81.0", verification="refuted")],
    ),
    # recent-trauma: within 90 days
    case(
        "lumbar fracture 90 days ago", "recent-trauma", PRESENT, conditions=[condition("S32.010A", onset=90)]
    ),
    case(
        "lumbar fracture 91 days ago", "recent-trauma", ABSENT, conditions=[condition("S32.010A", onset=91)]
    ),
    case("thoracic vertebra fracture", "recent-trauma", PRESENT, conditions=[condition("S22.050A", onset=5)]),
    case("rib fracture is not spine", "recent-trauma", ABSENT, conditions=[condition("S22.31XA", onset=5)]),
    case("fall W19", "recent-trauma", PRESENT, conditions=[condition("W19.XXXA", recorded=12)]),
    case("car occupant V43.52", "recent-trauma", PRESENT, conditions=[condition("V43.52XA", onset=12)]),
    case("lumbar nerve injury S34", "recent-trauma", PRESENT, conditions=[condition("S34.21XA", onset=12)]),
    case("spine injury T08", "recent-trauma", PRESENT, conditions=[condition("T08.XXXA", onset=12)]),
    case(
        "old fall, resolved",
        "recent-trauma",
        ABSENT,
        conditions=[condition("W10.1XXA", onset=400, clinical="resolved")],
    ),
    # prior-lumbar-surgery (Conditions)
    case("arthrodesis status", "prior-lumbar-surgery", PRESENT, conditions=[condition("Z98.1")]),
    case("postlaminectomy syndrome", "prior-lumbar-surgery", PRESENT, conditions=[condition("M96.1")]),
    case(
        "post-laminectomy SNOMED",
        "prior-lumbar-surgery",
        PRESENT,
        conditions=[condition("202725007", SNOMED)],
    ),
]


@pytest.mark.parametrize(("flag_id", "expected", "record"), CONDITION_ROWS)
def test_condition_criteria(flag_id: str, expected: FlagStatus, record: dict[str, Any]) -> None:
    assert flag_of(flag_id, **record).status is expected


def test_present_flag_carries_checkable_evidence() -> None:
    retention = condition("R33.9", onset=3, id="ret1", display="Retention of urine, unspecified")
    flag = flag_of("cauda-equina", conditions=[retention])
    assert flag.status is PRESENT
    (evidence,) = flag.evidence
    assert evidence.reference == "Condition/ret1"
    assert (evidence.system, evidence.code) == ("http://hl7.org/fhir/sid/icd-10-cm", "R33.9")
    assert evidence.display == "Retention of urine, unspecified"
    assert evidence.date == retention["onsetDateTime"]


def test_historical_condition_evidence_says_its_status() -> None:
    flag = flag_of("cancer-history", conditions=[condition("C50.911", clinical="remission", onset="2009")])
    assert flag.evidence[0].detail == "clinical status: remission"
    assert flag.evidence[0].date == "2009"


def test_condition_without_clinical_status_counts_as_active_unless_abated() -> None:
    no_status = condition("B20", clinical=None)
    abated = condition("B20", clinical=None, abatementDateTime="2020-01-01")
    assert flag_of("immunosuppression", conditions=[no_status]).status is PRESENT
    assert flag_of("immunosuppression", conditions=[abated]).status is ABSENT


def test_undated_condition_under_a_window_is_unknown_not_absent() -> None:
    result = findings(full_record(conditions=[condition("R33.9")]), [], AS_OF)
    flag = result.red_flags["cauda-equina"]
    assert flag.status is UNKNOWN
    assert flag.unchecked == (InputKind.CONDITIONS,)
    gap = next(gap for gap in result.data_gaps if gap.id == "records-undated")
    assert "cauda-equina" in gap.affects
    assert gap.kind is GapKind.RECORDS_SKIPPED
    assert "cauda equina syndrome" in gap_description(gap)


# ---- Observations: fever and weight loss ------------------------------------------------------------


OBSERVATION_ROWS = [
    case("37.9 Cel", "fever", ABSENT, observations=[temperature(37.9)]),
    case("38.0 Cel", "fever", PRESENT, observations=[temperature(38.0)]),
    case("100.3 degF", "fever", ABSENT, observations=[temperature(100.3, "[degF]")]),
    case("100.4 degF", "fever", PRESENT, observations=[temperature(100.4, "[degF]")]),
    case("38.5 Cel 7 days ago", "fever", PRESENT, observations=[temperature(38.5, when=7)]),
    case("38.5 Cel 8 days ago", "fever", ABSENT, observations=[temperature(38.5, when=8)]),
    case(
        "39 Cel entered in error",
        "fever",
        ABSENT,
        observations=[temperature(39.0, status="entered-in-error")],
    ),
    case("39 Cel cancelled", "fever", ABSENT, observations=[temperature(39.0, status="cancelled")]),
    case(
        "38.5 Cel preliminary counts",
        "fever",
        PRESENT,
        observations=[temperature(38.5, status="preliminary")],
    ),
    case(
        "fever among normal readings",
        "fever",
        PRESENT,
        observations=[temperature(36.8, when=0), temperature(38.2, when=2), temperature(37.0, when=1)],
    ),
    case("40 Cel a year ago is old", "fever", ABSENT, observations=[temperature(40.0, when=365)]),
    case(
        "80 -> 76 kg is exactly 5%",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(80, when=100), weight(76, when=10)],
    ),
    case(
        "80 -> 76.1 kg is under 5%",
        "unexplained-weight-loss",
        ABSENT,
        observations=[weight(80, when=100), weight(76.1, when=10)],
    ),
    case(
        "82 -> 77.9 kg is exactly 5% (decimals)",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(82, when=100), weight(77.9, when=10)],
    ),
    case(
        "weight gain is not loss",
        "unexplained-weight-loss",
        ABSENT,
        observations=[weight(76, when=100), weight(80, when=10)],
    ),
    case(
        "200 -> 190 lb",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(200, "[lb_av]", when=150), weight(190, "[lb_av]", when=3)],
    ),
    case(
        "80000 -> 75000 g",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(80000, "g", when=150), weight(75000, "g", when=3)],
    ),
    case(
        "mixed kg then lb",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(90, "kg", when=150), weight(187, "[lb_av]", when=3)],
    ),  # 84.8 kg
    case(
        "earlier weight 180 days ago inside window",
        "unexplained-weight-loss",
        PRESENT,
        observations=[weight(90, when=180), weight(80, when=1)],
    ),
    case(
        "earlier weight 181 days ago outside window",
        "unexplained-weight-loss",
        ABSENT,
        observations=[weight(90, when=181), weight(80, when=1)],
    ),
    case(
        "heavier weight entered in error",
        "unexplained-weight-loss",
        ABSENT,
        observations=[weight(90, when=100, status="entered-in-error"), weight(80, when=1)],
    ),
    case("single weight", "unexplained-weight-loss", ABSENT, observations=[weight(60)]),
]


@pytest.mark.parametrize(("flag_id", "expected", "record"), OBSERVATION_ROWS)
def test_observation_criteria(flag_id: str, expected: FlagStatus, record: dict[str, Any]) -> None:
    assert flag_of(flag_id, **record).status is expected


def test_fever_evidence_shows_the_reading() -> None:
    reading = temperature(101.2, "[degF]", id="t1", when=1)
    (evidence,) = flag_of("fever", observations=[reading]).evidence
    assert (evidence.reference, evidence.code, evidence.detail) == (
        "Observation/t1",
        "8310-5",
        "101.2 °F",  # the unit a clinician reads, not the UCUM code [degF]
    )
    assert evidence.date == reading["effectiveDateTime"]


def test_weight_loss_evidence_names_both_weights() -> None:
    flag = flag_of(
        "unexplained-weight-loss", observations=[weight(82, when=90, id="w1"), weight(76, when=2, id="w2")]
    )
    assert [e.reference for e in flag.evidence] == ["Observation/w1", "Observation/w2"]
    assert flag.evidence[0].detail == "82 kg"
    # The service cannot know why the weight fell, so the detail does not call the loss "unexplained".
    assert flag.evidence[1].detail == "82 kg -> 76 kg (-7.3%) in 88 days, cause not recorded"


@pytest.mark.parametrize(
    "reading",
    [
        pytest.param(temperature(39.5, unit=None), id="no unit"),
        pytest.param(temperature(39.5, unit="K"), id="kelvin is not read"),
        pytest.param(temperature(395, unit="Cel"), id="implausible 395 Cel"),
    ],
)
def test_temperature_that_cannot_be_read_leaves_fever_unknown(reading: dict[str, Any]) -> None:
    result = findings(full_record(observations=[reading]), [], AS_OF)
    assert result.red_flags["fever"].status is UNKNOWN
    assert result.red_flags["fever"].unchecked == (InputKind.OBSERVATIONS,)
    (note,) = result.data_quality
    assert note.resource_type == "Observation"
    assert note.resource_id == reading["id"]
    assert "395" not in note.problem
    assert "39.5" not in note.problem


def test_temperature_unit_text_is_read_when_there_is_no_ucum_code() -> None:
    reading = temperature(38.6, unit=None)
    reading["valueQuantity"]["unit"] = "°C"
    assert flag_of("fever", observations=[reading]).status is PRESENT


def test_observation_without_value_is_not_a_reading() -> None:
    no_value = temperature(38.0, dataAbsentReason={"text": "refused"})
    del no_value["valueQuantity"]
    assert flag_of("fever", observations=[no_value]).status is ABSENT


# ---- Age ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "over_50", "over_70"),
    [(50, ABSENT, ABSENT), (51, PRESENT, ABSENT), (70, PRESENT, ABSENT), (71, PRESENT, PRESENT)],
)
def test_age_thresholds_in_completed_years(age: int, over_50: FlagStatus, over_70: FlagStatus) -> None:
    result = findings(full_record(patient_resource=patient(birth_date_for_age(age))), [], AS_OF)
    assert result.age_years == age
    assert result.red_flags["age-over-50"].status is over_50
    assert result.red_flags["age-over-70"].status is over_70


def test_age_is_not_reached_the_day_before_the_birthday() -> None:
    birthday_tomorrow = AS_OF.replace(year=AS_OF.year - 51, day=AS_OF.day + 1).isoformat()
    result = findings(full_record(patient_resource=patient(birthday_tomorrow)), [], AS_OF)
    assert result.age_years == 50
    assert result.red_flags["age-over-50"].status is ABSENT


def test_partial_birth_date_straddling_a_threshold_is_unknown() -> None:
    straddles = str(AS_OF.year - 51)  # 50 or 51 years old depending on the day
    result = findings(full_record(patient_resource=patient(straddles)), [], AS_OF)
    assert result.age_years == 50
    assert result.red_flags["age-over-50"].status is UNKNOWN
    assert result.red_flags["age-over-70"].status is ABSENT
    assert any(gap.id == "birthdate-partial" for gap in result.data_gaps)


def test_partial_birth_date_clear_of_the_threshold_decides() -> None:
    result = findings(full_record(patient_resource=patient(f"{AS_OF.year - 60}-03")), [], AS_OF)
    assert result.red_flags["age-over-50"].status is PRESENT
    assert result.red_flags["age-over-50"].evidence[0].reference == "Patient/p1"


def test_missing_birth_date_leaves_age_unknown_with_a_gap() -> None:
    result = findings(full_record(patient_resource=patient(None)), [], AS_OF)
    assert result.age_years is None
    assert result.red_flags["age-over-50"].status is UNKNOWN
    assert result.red_flags["age-over-70"].unchecked == (InputKind.PATIENT,)
    assert "birthdate-missing" in [gap.id for gap in result.data_gaps]


# ---- Medications ----------------------------------------------------------------------------------

PREDNISONE = drug("prednisone 10 MG Oral Tablet")
MEDICATION_ROWS = [
    case(
        "statement covering 90 days",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[medication_statement(PREDNISONE, start=120, end=31)],
    ),
    case(
        "statement covering 89 days",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_statement(PREDNISONE, start=120, end=32)],
    ),
    case(
        "statement covering 91 days",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[medication_statement(PREDNISONE, start=120, end=30)],
    ),
    case(
        "open period runs to today",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[medication_statement(PREDNISONE, start=89)],
    ),
    case(
        "open period 89 days",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_statement(PREDNISONE, start=88)],
    ),
    case(
        "request 30 days x 3 fills = 90",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[medication_request(PREDNISONE, authored=200, supply_days=30, repeats=2)],
    ),
    case(
        "request 29 days x 3 fills = 87",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_request(PREDNISONE, authored=200, supply_days=29, repeats=2)],
    ),
    case(
        "two requests together reach 90",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[
            medication_request(PREDNISONE, authored=300, supply_days=45),
            medication_request(PREDNISONE, authored=100, supply_days=45),
        ],
    ),
    case(
        "overlapping requests count once",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[
            medication_request(PREDNISONE, authored=100, supply_days=60),
            medication_request(PREDNISONE, authored=80, supply_days=60),
        ],
    ),  # 80 days
    case(
        "course mostly before the last 365 days",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_statement(PREDNISONE, start=500, end=276)],
    ),  # 89 days inside
    case(
        "course partly in the last 365 days",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[medication_statement(PREDNISONE, start=500, end=275)],
    ),  # 90 days inside
    case(
        "CMS166 RxNorm code without a name",
        "prolonged-corticosteroids",
        PRESENT,
        medications=[
            medication_statement(
                {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312615"}]},
                start=200,
            )
        ],
    ),
    case(
        "topical hydrocortisone is not systemic",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_statement(drug("hydrocortisone 1% topical cream"), start=200)],
    ),
    case(
        "inhaled route is not systemic",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[
            medication_statement(drug("budesonide"), start=200),
            medication_statement(
                drug("triamcinolone"), start=200, dosage=[{"route": {"text": "Inhalation"}}]
            ),
        ],
    ),
    case(
        "not taken",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_statement(PREDNISONE, start=200, status="not-taken")],
    ),
    case(
        "entered in error",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[
            medication_request(PREDNISONE, authored=200, supply_days=200, status="entered-in-error")
        ],
    ),
    case(
        "do not perform",
        "prolonged-corticosteroids",
        ABSENT,
        medications=[medication_request(PREDNISONE, authored=200, supply_days=200, doNotPerform=True)],
    ),
    case(
        "alendronate request",
        "osteoporosis",
        PRESENT,
        medications=[medication_request(drug("Alendronate Sodium 70 MG Oral Tablet"), authored=900)],
    ),
    case(
        "denosumab statement",
        "osteoporosis",
        PRESENT,
        medications=[medication_statement(drug("denosumab 60 MG/ML injection"), when=30, status="completed")],
    ),
    case(
        "osteoporosis drug cancelled",
        "osteoporosis",
        ABSENT,
        medications=[medication_request(drug("risedronate"), authored=10, status="cancelled")],
    ),
    case(
        "unrelated drug",
        "osteoporosis",
        ABSENT,
        medications=[medication_request(drug("ibuprofen"), authored=3)],
    ),
]


@pytest.mark.parametrize(("flag_id", "expected", "record"), MEDICATION_ROWS)
def test_medication_criteria(flag_id: str, expected: FlagStatus, record: dict[str, Any]) -> None:
    assert flag_of(flag_id, **record).status is expected


def test_steroid_evidence_counts_the_days() -> None:
    flag = flag_of(
        "prolonged-corticosteroids", medications=[medication_statement(PREDNISONE, start=99, id="s1")]
    )
    (evidence,) = flag.evidence
    assert evidence.reference == "MedicationStatement/s1"
    assert evidence.detail is not None
    assert "100 of the last 365 days" in evidence.detail


def test_medication_reference_to_included_and_contained_medication() -> None:
    included = {"resourceType": "Medication", "id": "m1", "code": drug("dexamethasone 4 MG Oral Tablet")}
    by_reference = medication_statement(PREDNISONE, start=200)
    del by_reference["medicationCodeableConcept"]
    by_reference["medicationReference"] = {"reference": "Medication/m1"}
    assert flag_of("prolonged-corticosteroids", medications=[by_reference, included]).status is PRESENT
    contained = medication_request(PREDNISONE, authored=10)
    del contained["medicationCodeableConcept"]
    contained["contained"] = [{"resourceType": "Medication", "id": "x", "code": drug("ibandronate")}]
    contained["medicationReference"] = {"reference": "#x"}
    assert flag_of("osteoporosis", medications=[contained]).status is PRESENT


def test_undated_steroid_record_is_unknown() -> None:
    flag = flag_of("prolonged-corticosteroids", medications=[medication_statement(PREDNISONE)])
    assert flag.status is UNKNOWN
    assert flag.unchecked == (InputKind.MEDICATIONS,)


# ---- Procedures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(procedure("63030"), PRESENT, id="laminotomy completed"),
        pytest.param(procedure("22612", performed="2015"), PRESENT, id="fusion in 2015"),
        pytest.param(procedure("63047", status="not-done"), ABSENT, id="not done"),
        pytest.param(procedure("63047", status="in-progress"), ABSENT, id="in progress is not prior"),
        pytest.param(procedure("27447"), ABSENT, id="knee replacement"),
    ],
)
def test_prior_lumbar_surgery_procedures(resource: dict[str, Any], expected: FlagStatus) -> None:
    assert flag_of("prior-lumbar-surgery", procedures=[resource]).status is expected


# ---- Missing inputs: unknown, never absent ---------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "flag_id", "unchecked"),
    [
        (InputKind.OBSERVATIONS, "fever", (InputKind.OBSERVATIONS,)),
        (InputKind.OBSERVATIONS, "unexplained-weight-loss", (InputKind.OBSERVATIONS,)),
        (InputKind.CONDITIONS, "cancer-history", (InputKind.CONDITIONS,)),
        (InputKind.CONDITIONS, "fever", (InputKind.CONDITIONS,)),
        (InputKind.MEDICATIONS, "prolonged-corticosteroids", (InputKind.MEDICATIONS,)),
        (InputKind.MEDICATIONS, "osteoporosis", (InputKind.MEDICATIONS,)),
        (InputKind.PROCEDURES, "prior-lumbar-surgery", (InputKind.PROCEDURES,)),
        (InputKind.PATIENT, "age-over-50", (InputKind.PATIENT,)),
    ],
)
def test_flag_is_unknown_when_an_input_that_could_show_it_is_missing(
    missing: InputKind, flag_id: str, unchecked: tuple[InputKind, ...]
) -> None:
    result = findings(full_record(missing=[missing]), [], AS_OF)
    assert result.red_flags[flag_id].status is UNKNOWN
    assert result.red_flags[flag_id].unchecked == unchecked


def test_evidence_elsewhere_makes_a_flag_present_despite_a_missing_input() -> None:
    record = full_record(conditions=[condition("R50.9", onset=1)], missing=[InputKind.OBSERVATIONS])
    assert findings(record, [], AS_OF).red_flags["fever"].status is PRESENT


def test_everything_supplied_and_nothing_found_is_absent_for_every_flag() -> None:
    old_patient = patient(birth_date_for_age(35))
    result = findings(full_record(patient_resource=old_patient), [], AS_OF)
    assert {flag.status for flag in result.red_flags.values()} == {ABSENT}
    assert all(not flag.evidence and not flag.unchecked for flag in result.red_flags.values())


def test_every_red_flag_id_gets_a_status() -> None:
    from fhir_mappings.model import RED_FLAG_IDS

    result = findings(full_record(missing=list(InputKind)), [], AS_OF)
    assert tuple(result.red_flags) == RED_FLAG_IDS
    assert {flag.status for flag in result.red_flags.values()} == {UNKNOWN}
