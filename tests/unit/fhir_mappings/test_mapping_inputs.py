"""Prefetch values, search answers and `/evaluate` Bundles -> PatientRecord: supplied, incomplete, absent."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import build_record, findings, record_from_bundle
from fhir_mappings.model import FlagStatus, InputKind
from tests.support.fhir_records import (
    AS_OF,
    bundle,
    condition,
    drug,
    medication_request,
    medication_statement,
    patient,
    service_request,
    temperature,
)

OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


@pytest.mark.parametrize("bundle_type", ["searchset", "collection", "transaction", None])
def test_bundles_of_any_type_are_read(bundle_type: str | None) -> None:
    record, notes = build_record({InputKind.CONDITIONS: [bundle(condition("B20"), type=bundle_type)]})
    assert record.conditions is not None
    assert len(record.conditions) == 1
    assert notes == []
    assert record.incomplete == set()


def test_bare_resource_none_and_empty_bundle() -> None:
    record, _ = build_record(
        {
            InputKind.PATIENT: [patient()],
            InputKind.CONDITIONS: [None],
            InputKind.OBSERVATIONS: [bundle()],
        }
    )
    assert record.patient is not None
    assert record.patient["id"] == "p1"
    assert record.conditions == []
    assert record.observations == []
    assert record.medications is None
    assert record.procedures is None
    assert record.service_requests is None


def test_operation_outcome_is_not_supplied() -> None:
    record, _ = build_record({InputKind.OBSERVATIONS: [OUTCOME], InputKind.CONDITIONS: []})
    assert record.observations is None
    assert record.conditions is None  # an empty sequence carries no answer at all


def test_a_failed_page_makes_a_kind_incomplete_but_keeps_its_evidence() -> None:
    record, _ = build_record(
        {
            InputKind.PATIENT: [patient()],
            InputKind.CONDITIONS: [bundle(condition("C79.51")), OUTCOME],
        }
    )
    assert record.incomplete == {InputKind.CONDITIONS}
    result = findings(record, [], AS_OF)
    assert result.red_flags["cancer-history"].status is FlagStatus.PRESENT
    assert result.red_flags["spinal-infection"].status is FlagStatus.UNKNOWN
    assert "conditions-incomplete" in [gap.id for gap in result.data_gaps]


def test_a_next_link_left_unfetched_makes_a_kind_incomplete() -> None:
    first_page = bundle(condition("B20")) | {
        "link": [{"relation": "next", "url": "http://fhir/Condition?page=2"}]
    }
    last_page = bundle(condition("Z94.0"))
    unfinished, _ = build_record({InputKind.CONDITIONS: [first_page]})
    finished, _ = build_record({InputKind.CONDITIONS: [first_page, last_page]})
    assert unfinished.incomplete == {InputKind.CONDITIONS}
    assert finished.incomplete == set()
    assert finished.conditions is not None
    assert len(finished.conditions) == 2


def test_medication_requests_and_statements_share_one_kind() -> None:
    prednisone = drug("prednisone")
    record, _ = build_record(
        {
            InputKind.MEDICATIONS: [
                bundle(medication_request(prednisone, authored=3)),
                bundle(medication_statement(prednisone, when=3)),
            ]
        }
    )
    assert record.medications is not None
    assert [r["resourceType"] for r in record.medications] == ["MedicationRequest", "MedicationStatement"]
    assert record.incomplete == set()


def test_one_medication_part_failing_makes_medications_incomplete() -> None:
    record, _ = build_record({InputKind.MEDICATIONS: [bundle(), OUTCOME]})
    assert record.medications == []
    assert record.incomplete == {InputKind.MEDICATIONS}


def test_included_resources_go_to_their_own_list_as_incomplete() -> None:
    searchset = bundle(condition("B20"), patient(), temperature(39.0))
    record, _ = build_record({InputKind.CONDITIONS: [searchset]})
    assert record.patient is not None
    assert record.observations is not None
    assert len(record.observations) == 1
    # Observations were never asked for: the one that came along is evidence, but not the whole answer.
    assert InputKind.OBSERVATIONS in record.incomplete


def test_unknown_types_and_junk_entries_are_skipped_with_notes() -> None:
    searchset = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Foo", "id": "f1"}},
            {"resource": {"id": "no-type"}},
            {"resource": "text"},
            {"resource": {"resourceType": "Encounter", "id": "e1"}},  # known, not read: silently skipped
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"fullUrl": "no resource"},
            "not an entry",
            {"resource": condition("B20")},
        ],
    }
    record, notes = build_record({InputKind.CONDITIONS: [searchset]})
    assert record.conditions is not None
    assert len(record.conditions) == 1
    assert [(n.resource_type, n.resource_id) for n in notes] == [
        ("Foo", "f1"),
        ("unknown", "no-type"),
        ("unknown", None),
    ]
    assert record.incomplete == set()


@pytest.mark.parametrize("junk", ["text", 42, ["list"]])
def test_a_value_that_is_not_json_data_is_a_failed_part(junk: Any) -> None:
    record, _ = build_record({InputKind.PROCEDURES: [junk]})
    assert record.procedures is None


def test_more_than_one_patient_uses_the_first_and_says_so() -> None:
    record, notes = build_record({InputKind.PATIENT: [bundle(patient(id="a"), patient(id="b"))]})
    assert record.patient is not None
    assert record.patient["id"] == "a"
    assert [note.problem for note in notes] == ["more than one Patient; the first is used"]


def test_record_from_bundle_splits_orders_and_marks_supplied_kinds() -> None:
    physio = service_request("97110", id="pt")
    mri = service_request("72148", id="mri")
    evaluate = bundle(patient(), condition("M54.50", onset=10), physio, mri, type="collection")
    record, orders, notes = record_from_bundle(evaluate)
    assert [order["id"] for order in orders] == ["mri"]
    assert record.service_requests == [physio]
    assert record.patient is not None
    assert record.conditions is not None
    assert record.observations is None
    assert record.medications is None
    assert record.procedures is None
    assert notes == []
    result = findings(record, [], AS_OF)
    assert {gap.id for gap in result.data_gaps} >= {
        "observations-not-supplied",
        "medications-not-supplied",
        "procedures-not-supplied",
    }


def test_record_from_bundle_tolerates_a_bundle_without_entries() -> None:
    record, orders, notes = record_from_bundle({"resourceType": "Bundle"})
    assert record.patient is None
    assert record.conditions is None
    assert orders == []
    assert notes == []


def test_resources_of_another_patient_are_skipped_and_noted() -> None:
    other = condition("C79.51", id="not-ours") | {"subject": {"reference": "http://ehr/fhir/Patient/p2"}}
    ours = condition("B20", id="ours") | {"subject": {"reference": "http://ehr/fhir/Patient/p1/_history/3"}}
    unmatched = condition("Z94.0", id="uuid") | {"subject": {"reference": "urn:uuid:9b7e"}}
    record, notes = build_record(
        {InputKind.PATIENT: [patient()], InputKind.CONDITIONS: [bundle(other, ours, unmatched)]}
    )
    assert record.conditions is not None
    assert [c["id"] for c in record.conditions] == ["ours", "uuid"]
    assert [(n.resource_id, n.problem) for n in notes] == [
        ("not-ours", "subject is another patient; skipped")
    ]
    assert findings(record, [], AS_OF).red_flags["cancer-history"].status is FlagStatus.ABSENT


@pytest.mark.parametrize(
    ("status", "is_order"),
    [
        ("draft", True),
        ("active", True),
        ("completed", False),
        ("revoked", False),
        ("entered-in-error", False),
    ],
)
def test_record_from_bundle_judges_only_open_imaging_orders(status: str, is_order: bool) -> None:
    mri = service_request("72148", id="mri", status=status)
    record, orders, _ = record_from_bundle(bundle(patient(), mri))
    assert [order["id"] for order in orders] == (["mri"] if is_order else [])
    assert record.service_requests == (None if is_order else [mri])
