"""CMS166v7 from the same export: the generator's populations reproduced, boundary pairs on the windows,
and the value sets copied into the project with their OIDs (never read from ../shared at run time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.audit.measure import DEFINITION, evaluate, load_measure
from service.audit.reader import Line
from service.audit.run import Options, run_audit
from tests.audit.conftest import known_answers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("measure-report")
    run_audit(Options(export=export, out=out, show_patient_ids=True))
    return out


def test_the_measure_reproduces_the_generators_populations(export: Path, report: Path) -> None:
    known = known_answers(export)["measure"]
    summary = json.loads((report / "summary.json").read_text())["measure"]
    year = summary["years"][str(known["year"])]
    assert summary["year"] == known["year"]
    assert year["initialPopulation"] == known["initialPopulation"]
    assert year["denominator"] == known["denominator"]
    assert year["numerator"] == known["numerator"]
    assert sum(year["exclusions"].values()) == known["exclusions"]
    assert known["denominator"] > 50
    assert 0 < known["numerator"] < known["denominator"]


def test_each_patient_lands_where_the_generator_put_them(export: Path, report: Path) -> None:
    known = {p["patient"]: p for p in known_answers(export)["measure"]["patients"]}
    lines = (report / "measure-patients.csv").read_text().splitlines()
    header = lines[0].split(",")
    found = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        if row["year"] == "2025" and row["initialPopulation"] == "True":
            found[row["patient"]] = (
                row["denominator"] == "True",
                row["exclusion"] or None,
                row["numerator"] == "True",
            )
    assert found == {p: (k["denominator"], k["exclusion"], k["numerator"]) for p, k in known.items()}


def _lines(*resources: dict[str, Any]) -> list[Line]:
    return [Line("p", r["resourceType"], r, json.dumps(r)) for r in resources]


PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1990-01-01"}


def _back_pain(day: str, code: str = "M54.50") -> dict[str, Any]:
    coding = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}
    return {"resourceType": "Condition", "code": {"coding": [coding]}, "recordedDate": day}


def _xray(day: str) -> dict[str, Any]:
    coding = {"system": "http://loinc.org", "code": "24970-6"}  # in the measure's X-ray value set
    return {"resourceType": "ImagingStudy", "procedureCode": [{"coding": [coding]}], "started": day}


@pytest.mark.parametrize(
    ("imaged_on", "in_numerator"),
    [("2025-03-29", False), ("2025-03-30", True)],  # day 28 after the index date counts, day 29 does not
)
def test_imaging_counts_within_28_days_of_the_index_date(imaged_on: str, in_numerator: bool) -> None:
    [outcome] = evaluate(_lines(PATIENT, _back_pain("2025-03-01"), _xray(imaged_on)))
    assert outcome.denominator
    assert outcome.numerator is in_numerator


@pytest.mark.parametrize(("born", "in_population"), [("2007-01-01", True), ("2007-01-02", False)])
def test_the_patient_is_18_at_the_start_of_the_year(born: str, in_population: bool) -> None:
    [outcome] = evaluate(_lines({**PATIENT, "birthDate": born}, _back_pain("2025-03-01")))
    assert outcome.initial_population is in_population


@pytest.mark.parametrize(("earlier", "excluded"), [("2024-09-02", True), ("2024-09-01", False)])
def test_a_diagnosis_in_the_180_days_before_makes_the_episode_not_new(earlier: str, excluded: bool) -> None:
    outcomes = {o.year: o for o in evaluate(_lines(PATIENT, _back_pain(earlier), _back_pain("2025-03-01")))}
    assert (outcomes[2025].exclusion == "recent-low-back-pain") is excluded


def test_a_2017_code_matches_its_later_children_and_the_value_sets_carry_their_source() -> None:
    measure = load_measure()
    assert measure.matches(
        "low-back-pain", {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.59"}]}
    )
    assert not measure.matches(
        "low-back-pain", {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.2"}]}
    )
    definition = json.loads(DEFINITION.read_text())
    assert definition["definitionYear"] == 2017
    assert all(vs["oid"].startswith("2.16.840.1.") and vs["expansion"] for vs in definition["valueSets"])
    sources = "".join(p.read_text() for p in (ROOT / "service" / "audit").rglob("*.py"))
    assert "../shared" not in sources
    assert "shared/reference" not in sources
