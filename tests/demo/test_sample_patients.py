"""The sample patients (examples/patients/): the files are what make_patients.py writes, they cover what
the demo promises, and every card the index expects holds through the real hook endpoints."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhir_mappings.model import RED_FLAG_IDS
from service.demo.patients import DEFAULT_FOLDER, load_index, load_sample_patients
from tests.demo.conftest import card_facts, draft_order, hook_call, json_of

INDEX = load_index()
ORDERS = [
    pytest.param(patient["id"], order, id=f"{patient['id']}--{order['procedure']}")
    for patient in INDEX["patients"]
    for order in patient["orders"]
]
URGENT_FLAGS = {
    "cauda equina": {"cauda-equina"},
    "cancer": {"cancer-history"},
    "infection": {"fever", "iv-drug-use", "immunosuppression", "spinal-infection"},
    "fracture risk": {"osteoporosis", "prolonged-corticosteroids", "age-over-70", "recent-trauma"},
    "progressive deficit": {"severe-neurologic-deficit"},
}


def _make_patients_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_patients", DEFAULT_FOLDER / "make_patients.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def on_the_reference_date(clock: Any) -> None:
    clock.now = datetime.combine(date.fromisoformat(INDEX["referenceDate"]), time(12), tzinfo=UTC)


def test_the_files_are_what_make_patients_writes():
    for name, content in _make_patients_module().rendered().items():
        assert (DEFAULT_FOLDER / name).read_text(encoding="utf-8") == content, f"{name}: run make_patients.py"


def test_the_samples_cover_every_variant_urgent_red_flag_surgery_and_missing_data():
    expectations = [order["expect"] for patient in INDEX["patients"] for order in patient["orders"]]
    variants = {variant for expect in expectations for variant in expect["variants"]}
    assert {"V1", "V2", "V3", "V4", "V5", "V6", "V7"} <= variants
    flags = {flag for expect in expectations for flag in expect.get("redFlags", [])}
    assert flags <= set(RED_FLAG_IDS)
    for name, members in URGENT_FLAGS.items():
        assert flags & members, f"no sample patient with {name}"
    assert "prior-lumbar-surgery" in flags
    samples = load_sample_patients()
    without_observations = [
        p
        for p in samples.patients.values()
        if not any(r["resourceType"] == "Observation" for r in p.resources)
    ]
    assert without_observations, "no sample patient whose record lacks Observations"
    assert len(INDEX["patients"]) >= 12


def test_every_bundle_is_an_adult_transaction_coded_as_ehrs_code():
    systems = set()
    for patient in INDEX["patients"]:
        bundle = json.loads((DEFAULT_FOLDER / patient["file"]).read_text(encoding="utf-8"))
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
            for coding in concept.get("coding", []):
                systems.add(coding["system"])
            if resource["resourceType"] == "Observation":
                assert resource["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        birth = date.fromisoformat(bundle["entry"][0]["resource"]["birthDate"])
        assert (date.fromisoformat(INDEX["referenceDate"]) - birth).days >= 18 * 365
    assert {
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://snomed.info/sct",
        "http://loinc.org",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "http://www.ama-assn.org/go/cpt",
    } <= systems


@pytest.mark.parametrize(("patient_id", "order"), ORDERS)
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_each_index_expectation_holds_through_the_hooks(demo: FlaskClient, hook, patient_id, order):
    draft = draft_order(demo, patient_id, order["procedure"])

    answer = hook_call(demo, hook, patient_id, [draft])

    (card,) = answer["cards"]
    expected = {"suggests": None, "redFlags": [], **order["expect"]}
    expected["redFlags"] = sorted(expected["redFlags"])
    assert card_facts(card) == expected
    assert card["extension"]["lbp-imaging-cds"]["procedure"] == order["procedure"]


def test_expectations_hold_on_any_day_as_the_dates_move_with_it(demo: FlaskClient, clock: Any):
    clock.now += timedelta(days=400)
    for patient in INDEX["patients"][:4]:
        order = patient["orders"][0]
        answer = hook_call(
            demo, "order-sign", patient["id"], [draft_order(demo, patient["id"], order["procedure"])]
        )
        assert card_facts(answer["cards"][0])["variants"] == order["expect"]["variants"], patient["id"]


def test_the_patient_picker_lists_every_sample_with_its_age(demo: FlaskClient):
    listed = json_of(demo.get("/demo/api/patients"))["patients"]
    assert [p["id"] for p in listed] == [p["id"] for p in INDEX["patients"]]
    ages = {p["id"]: p["age"] for p in listed}
    assert ages["demo-elderly"] == 78
    assert ages["demo-acute"] == 42


def test_the_file_folder_is_the_one_the_service_reads():
    assert Path(DEFAULT_FOLDER).is_dir()
