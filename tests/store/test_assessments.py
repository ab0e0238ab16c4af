"""An assessment is kept whole (record + orders), under a keyed patient hash, and survives a restart."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

import pytest

from fhir_mappings.model import Evidence
from service.store import EvidenceReference, Store, StoreError
from tests.store.builders import (
    CPT,
    PATIENT_HASH_KEY,
    START,
    all_text_in_database,
    assessment,
    order,
    with_evidence,
)


def test_save_and_get_round_trip_keeps_every_field(store: Store) -> None:
    record = assessment(
        1,
        red_flags=("cancer-history",),
        unchecked_red_flags=("fever", "iv-drug-use"),
        variants=("variant-2",),
        evidence=with_evidence(),
        urgent=True,
        latency_ms=12.25,
        orderer_reference="Practitioner/dr-1",
        orders=(
            order(1),
            order(
                2,
                modality="XR",
                procedure="xr-lumbar",
                order_code="72100",
                pama_rating=None,
                card_uuid=None,
                suggestion_uuids=(),
                appropriateness="may-be-appropriate",
            ),
        ),
    )
    store.save_assessment(record)

    assert store.get_assessment("assessment-1") == {
        "assessmentId": "assessment-1",
        "createdAt": "2026-03-01T09:01:00Z",
        "serviceId": "lbp-imaging-order-sign",
        "hookInstance": "hook-instance-1",
        "clientIss": "https://ehr.example.org",
        "patientKey": hmac.new(PATIENT_HASH_KEY.encode(), b"Patient/patient-1", hashlib.sha256).hexdigest(),
        # The documented derivation: HMAC-SHA256 over "orderer:" + context.userId.
        "ordererKey": hmac.new(
            PATIENT_HASH_KEY.encode(), b"orderer:Practitioner/dr-1", hashlib.sha256
        ).hexdigest(),
        "rulesVersion": "acr-lbp-2021.1",
        "latencyMs": 12.25,
        "urgent": True,
        "variants": ["variant-2"],
        "redFlags": ["cancer-history"],
        "uncheckedRedFlags": ["fever", "iv-drug-use"],
        "evidence": [
            {
                "finding": "cancer-history",
                "reference": "Condition/c1",
                "system": "http://snomed.info/sct",
                "code": "363346000",
                "date": "2019-04",
            },
            {"finding": "episode", "reference": "Condition/lbp"},
        ],
        "dataGaps": ["observations-not-supplied"],
        "orders": [
            {
                "cardUuid": "card-1",
                "orderReference": "ServiceRequest/order-1",
                "orderCode": {"system": CPT, "code": "72148"},
                "procedure": "mri-lumbar-without-contrast",
                "modality": "MRI",
                "appropriateness": "usually-not-appropriate",
                "pamaRating": "not-appropriate",
                "suggestionUuids": ["suggestion-1-a", "suggestion-1-b"],
                "feedback": [],
            },
            {
                "orderReference": "ServiceRequest/order-2",
                "orderCode": {"system": CPT, "code": "72100"},
                "procedure": "xr-lumbar",
                "modality": "XR",
                "appropriateness": "may-be-appropriate",
                "suggestionUuids": [],
                "feedback": [],
            },
        ],
    }


def test_unknown_assessment_is_none(store: Store) -> None:
    store.save_assessment(assessment(1))
    assert store.get_assessment("assessment-2") is None


def test_patient_reference_is_never_stored_only_its_keyed_hash(store: Store, database_url: str) -> None:
    store.save_assessment(assessment(1, patient_reference="Patient/very-recognisable-id"))
    store.save_assessment(assessment(2, patient_reference="Patient/very-recognisable-id"))
    store.save_assessment(assessment(3, patient_reference="Patient/someone-else"))

    keys = [store.get_assessment(f"assessment-{n}")["patientKey"] for n in (1, 2, 3)]  # type: ignore[index]
    assert keys[0] == keys[1] != keys[2]  # grouped per patient without saying who
    assert "very-recognisable-id" not in all_text_in_database(database_url)


def test_evidence_on_the_patient_resource_keeps_neither_its_id_nor_the_birth_date(
    store: Store, database_url: str
) -> None:
    age = EvidenceReference(
        finding="age-over-50", reference="Patient/very-recognisable-id", date="1961-02-03"
    )
    absolute = EvidenceReference(
        finding="age-over-70", reference="https://fhir.example/r4/Patient/very-recognisable-id/_history/3"
    )
    store.save_assessment(
        assessment(1, patient_reference="Patient/very-recognisable-id", evidence=(age, absolute))
    )

    assert store.get_assessment("assessment-1")["evidence"] == [  # type: ignore[index]
        {"finding": "age-over-50", "reference": "Patient"},
        {"finding": "age-over-70", "reference": "Patient"},
    ]
    stored = all_text_in_database(database_url)
    assert "very-recognisable-id" not in stored
    assert "1961" not in stored


def test_a_different_key_gives_a_different_hash(open_store: Callable[..., Store]) -> None:
    first = open_store()
    second = open_store(patient_hash_key="another-key")
    assert first.patient_key("Patient/p") != second.patient_key("Patient/p")


def test_without_a_hash_key_no_patient_key_is_stored(
    open_store: Callable[..., Store], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(patient_hash_key=None)
    assert "CDS_PATIENT_HASH_KEY is not set" in caplog.text
    store.save_assessment(assessment(1, orderer_reference="Practitioner/dr-1"))
    record = store.get_assessment("assessment-1")
    assert record is not None
    assert "patientKey" not in record
    assert "ordererKey" not in record
    stored = all_text_in_database(database_url)
    assert "patient-1" not in stored
    assert "dr-1" not in stored


def test_a_failed_save_stores_nothing_of_that_assessment(store: Store) -> None:
    store.save_assessment(assessment(1))
    # The second order reuses card-1: the order insert fails after the assessment row was written.
    clash = assessment(2, orders=(order(2), order(3, card_uuid="card-1")))
    with pytest.raises(StoreError, match="write failed: IntegrityError"):
        store.save_assessment(clash)
    assert store.get_assessment("assessment-2") is None
    assert store.summary(START, START + timedelta(days=1))["orders"] == 1


def test_the_same_assessment_id_is_refused(store: Store) -> None:
    store.save_assessment(assessment(1))
    with pytest.raises(StoreError):
        store.save_assessment(assessment(1, orders=(order(9),)))
    assert store.get_assessment("assessment-1")["orders"][0]["cardUuid"] == "card-1"  # type: ignore[index]


def test_long_values_from_the_ehr_are_kept_whole(store: Store) -> None:
    long_code = "7" * 300
    store.save_assessment(assessment(1, hook_instance="h" * 300, orders=(order(1, order_code=long_code),)))
    assert store.get_assessment("assessment-1")["orders"][0]["orderCode"]["code"] == long_code  # type: ignore[index]


def test_a_value_longer_than_its_column_is_refused_by_name(store: Store) -> None:
    with pytest.raises(ValueError, match=r"assessment_orders\.card_uuid is longer than 128"):
        store.save_assessment(assessment(1, orders=(order(1, card_uuid="c" * 129),)))
    assert store.get_assessment("assessment-1") is None


def test_records_refuse_naive_times_and_duplicate_cards() -> None:
    with pytest.raises(ValueError, match="created_at must be timezone-aware"):
        assessment(1, created_at=START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="same card uuid"):
        assessment(1, orders=(order(1), order(2, card_uuid="card-1")))


def test_reopening_the_store_keeps_everything(open_store: Callable[..., Store]) -> None:
    first = open_store()
    first.save_assessment(assessment(1, evidence=with_evidence()))
    before = first.get_assessment("assessment-1")
    first.close()

    reopened = open_store()  # a restart: new engine, schema already there
    assert reopened.get_assessment("assessment-1") == before
    reopened.save_assessment(assessment(2))
    assert reopened.get_assessment("assessment-2") is not None


def test_evidence_keeps_the_pointer_and_leaves_the_record_text_behind() -> None:
    evidence = Evidence(
        reference="Observation/weight-2",
        code="29463-7",
        system="http://loinc.org",
        display="Body weight (typed by the nurse)",
        date="2026-02-01",
        detail="82 kg -> 76 kg (-7.3%)",
    )
    assert EvidenceReference.of("unexplained-weight-loss", evidence).as_json() == {
        "finding": "unexplained-weight-loss",
        "reference": "Observation/weight-2",
        "system": "http://loinc.org",
        "code": "29463-7",
        "date": "2026-02-01",
    }
