"""Odd clinical data never raises: invalid resources become data-quality notes, flags stay honest."""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings import build_record, check_terminology, findings, imaging_orders, record_from_bundle
from fhir_mappings.model import RED_FLAG_IDS, FlagStatus, GapKind, InputKind
from service.wording.gaps import gap_description
from tests.support.fhir_records import (
    AS_OF,
    CPT,
    ICD10,
    bundle,
    condition,
    drug,
    full_record,
    medication_request,
    medication_statement,
    patient,
    procedure,
    service_request,
    temperature,
    weight,
)

SENTINEL = "PHI-SENTINEL-Jane-Doe-1970"


def test_invalid_candidate_is_skipped_with_a_note_naming_fields_not_values() -> None:
    broken = condition(
        "C79.51", id="bad", onsetDateTime="2024-13-45", note=[{"text": SENTINEL}], extra=SENTINEL
    )
    result = findings(full_record(conditions=[broken]), [], AS_OF)
    assert result.red_flags["cancer-history"].status is FlagStatus.UNKNOWN
    assert result.red_flags["cancer-history"].unchecked == (InputKind.CONDITIONS,)
    (note,) = result.data_quality
    assert (note.resource_type, note.resource_id) == ("Condition", "bad")
    assert "onsetDateTime (value_error)" in note.problem
    assert "extra (extra_forbidden)" in note.problem
    assert SENTINEL not in note.problem
    assert "2024-13-45" not in note.problem
    (gap,) = [gap for gap in result.data_gaps if gap.id == "records-unreadable"]
    assert gap.affects == ("cancer-history",)
    assert (gap.kind, gap.problem, gap.count) == (GapKind.RECORDS_SKIPPED, "unreadable", 1)


def test_invalid_resource_that_feeds_no_finding_is_not_validated() -> None:
    irrelevant = condition("I10", onsetDateTime="not a date")  # hypertension: read by no rule
    result = findings(full_record(conditions=[irrelevant]), [], AS_OF)
    assert result.data_quality == ()
    assert result.red_flags["cancer-history"].status is FlagStatus.ABSENT


def test_old_record_outside_its_window_is_not_validated() -> None:
    stale = temperature(39.0, when=400, status="final", extra="field")
    result = findings(full_record(observations=[stale]), [], AS_OF)
    assert result.data_quality == ()
    assert result.red_flags["fever"].status is FlagStatus.ABSENT


def test_valid_evidence_survives_beside_an_invalid_record() -> None:
    good, bad = temperature(38.4, id="good"), temperature(39.9, id="bad", status=7)
    result = findings(full_record(observations=[bad, good]), [], AS_OF)
    assert result.red_flags["fever"].status is FlagStatus.PRESENT
    assert [e.reference for e in result.red_flags["fever"].evidence] == ["Observation/good"]
    assert [note.resource_id for note in result.data_quality] == ["bad"]


def test_code_that_is_not_a_codeable_concept_is_noted_once() -> None:
    junk = {"resourceType": "Procedure", "id": "j", "status": "completed", "code": "63030"}
    result = findings(full_record(procedures=[junk], conditions=[condition("M54.50", onset=9)]), [], AS_OF)
    assert [(n.resource_id, n.problem) for n in result.data_quality] == [
        ("j", "code is not a CodeableConcept; skipped")
    ]


def test_invalid_patient_leaves_age_unknown() -> None:
    bad_patient = patient("1950-01-01") | {"gender": 3}
    result = findings(full_record(patient_resource=bad_patient), [], AS_OF)
    assert result.red_flags["age-over-70"].status is FlagStatus.UNKNOWN
    assert result.age_years is None
    assert result.patient_reference == "Patient/p1"


def _rich_resources() -> list[dict[str, Any]]:
    """A record that shows every red flag, to mutate."""
    prednisone = drug("prednisone 20 MG Oral Tablet")
    return [
        patient("1940-02-03"),
        condition("M54.50", onset=60),
        condition("G83.4"),
        condition("R33.9", onset=3),
        condition("M21.371", onset=3),
        condition("C79.51", onsetPeriod={"start": "2020-01"}),
        condition("R63.4", recorded=10),
        condition("R50.9", onset=1),
        condition("F11.20", recorded=100),
        condition("B20"),
        condition("M46.26"),
        condition("Z79.52"),
        condition("M81.0"),
        condition("S32.010A", onset=5),
        condition("Z98.1"),
        temperature(101.5, "[degF]", when=1),
        weight(90, when=100),
        weight(80, when=2),
        medication_statement(prednisone, start=200),
        medication_request(prednisone, authored=300, supply_days=30, repeats=3),
        medication_request(drug("alendronate 70 MG"), authored=50),
        procedure("63030", performed="2019"),
        procedure("97110", performed=20),
        service_request("97161", authored=30),
    ]


JUNK: list[Any] = [None, "", SENTINEL, 42, -1.5, True, [], {}, [SENTINEL], {"x": SENTINEL}, "2024-99-99", "T"]


def _mutate(value: Any, rng: random.Random) -> Any:
    """Replaces one randomly chosen node of the JSON tree with junk."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        value[index] = _mutate(value[index], rng)
        return value
    return copy.deepcopy(rng.choice(JUNK))


@pytest.mark.parametrize("seed", range(40))
def test_randomly_broken_records_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    resources = _rich_resources()
    for _ in range(rng.randint(1, 12)):
        index = rng.randrange(len(resources))
        resources[index] = _mutate(resources[index], rng)
    mri = service_request("72148", CPT, reason_codes=[("G83.4", ICD10)], reasonReference=[{"reference": "x"}])
    draft = _mutate(bundle(mri), rng) if rng.random() < 0.5 else bundle(mri)
    searchset = {"resourceType": "Bundle", "entry": [{"resource": resource} for resource in resources]}
    record, notes = build_record({kind: [searchset] for kind in InputKind})
    result = findings(record, imaging_orders(draft), AS_OF)
    assert tuple(result.red_flags) == RED_FLAG_IDS
    for flag in result.red_flags.values():
        assert (flag.status is FlagStatus.PRESENT) == bool(flag.evidence)
        assert (flag.status is FlagStatus.UNKNOWN) == bool(flag.unchecked)
    for note in [*notes, *result.data_quality]:
        assert SENTINEL not in note.problem
    for gap in result.data_gaps:
        assert SENTINEL not in gap_description(gap)
    evaluate_record, _, _ = record_from_bundle(searchset)
    findings(evaluate_record, [], AS_OF)


def _with_dates(value: Any, replacement: str) -> Any:
    """Every FHIR date or dateTime in `value` replaced by `replacement`."""
    if isinstance(value, dict):
        return {key: _with_dates(item, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_dates(item, replacement) for item in value]
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit() and value[4:5] in ("", "-"):
        return replacement
    return value


@pytest.mark.parametrize("extreme", ["9999-12-31", "0001-01-01", "9999", "0001-01-01T00:00:00Z"])
def test_dates_at_the_ends_of_the_calendar_never_raise(extreme: str) -> None:
    """EHRs write 9999-12-31 for "no end date"; date arithmetic on it must not overflow."""
    resources = _with_dates(_rich_resources(), extreme)
    record, _ = build_record({kind: [bundle(*resources)] for kind in InputKind})
    result = findings(record, [], AS_OF)
    assert tuple(result.red_flags) == RED_FLAG_IDS


def test_unbroken_rich_record_shows_every_red_flag() -> None:
    record, _ = build_record({kind: [bundle(*_rich_resources())] for kind in InputKind})
    result = findings(record, [], AS_OF)
    assert {
        flag_id for flag_id, flag in result.red_flags.items() if flag.status is FlagStatus.PRESENT
    } == set(RED_FLAG_IDS)
    assert result.therapy.documented
    assert result.data_quality == ()


def test_inputs_are_not_mutated() -> None:
    resources = _rich_resources()
    before = copy.deepcopy(resources)
    record, _ = build_record({kind: [bundle(*resources)] for kind in InputKind})
    findings(record, imaging_orders([service_request("72148")]), AS_OF)
    assert resources == before


def test_junk_entries_in_a_hand_built_record_are_ignored() -> None:
    junk: list[Any] = [
        None,
        42,
        "Condition",
        [],
        {"resourceType": 7},
        {"resourceType": "Condition", "code": []},
    ]
    record = full_record(
        conditions=junk, observations=junk, medications=junk, procedures=junk, service_requests=junk
    )
    result = findings(record, [], AS_OF)
    assert result.red_flags["cancer-history"].status is FlagStatus.ABSENT


def test_start_up_check_passes_and_importing_stays_cheap() -> None:
    check_terminology()
    heavy = ("pydantic", "fhir.resources")
    probe = f"import sys, fhir_mappings; print([m for m in {heavy!r} if m in sys.modules])"
    repo_root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert result.stdout.strip() == "[]"
