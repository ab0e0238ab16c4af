"""The mappings' clinical knowledge is data: one registry of ids, structured sources, criteria that fail
fast when broken, and a threshold that changes with a data-file edit and no Python change."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fhir_mappings import criteria
from fhir_mappings.registry import (
    CRITERIA_FILE,
    PROCEDURE_IDS,
    PROCEDURE_MODALITY,
    RED_FLAG_IDS,
    RED_FLAG_TITLES,
    KnowledgeError,
    sources,
)
from service.rules import load_rules

ROOT = Path(__file__).resolve().parents[3]
KNOWLEDGE_FILES = [
    *sorted((ROOT / "fhir_mappings" / "knowledge").glob("*.yaml")),
    *sorted((ROOT / "fhir_mappings" / "valuesets").glob("*")),
    *sorted((ROOT / "service" / "knowledge").glob("*")),
]


def _openapi_enum(schema: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    return list(spec["components"]["schemas"][schema]["enum"])


def test_one_registry_of_ids_read_by_mappings_rules_and_the_contract() -> None:
    rules = load_rules()
    assert list(RED_FLAG_IDS) == _openapi_enum("RedFlagId")
    assert list(PROCEDURE_IDS) == _openapi_enum("ProcedureId")
    assert sorted(set(PROCEDURE_MODALITY.values())) == sorted(_openapi_enum("Modality"))
    assert tuple(criteria.RED_FLAGS) == RED_FLAG_IDS
    assert set(rules.procedures) == set(PROCEDURE_IDS)
    assert {pid: p.modality for pid, p in rules.procedures.items()} == dict(PROCEDURE_MODALITY)
    assert {flag: rules.flag_title(flag) for flag in RED_FLAG_IDS} == dict(RED_FLAG_TITLES)


def test_sources_shared_with_the_rules_name_the_same_work() -> None:
    citations = load_rules().citations
    shared = set(sources()) & set(citations)
    assert {"acr-lbp-2021", "acp-aps-2007", "acp-2011", "ama-cpt", "loinc-radiology"} <= shared
    for source_id in shared:
        source, citation = sources()[source_id], citations[source_id]
        assert (source.doi, source.url) == (citation.doi, citation.url), source_id


def test_every_criterion_and_threshold_cites_known_sources() -> None:
    for flag in criteria.RED_FLAGS.values():
        assert flag.sources, flag.id
        assert set(flag.sources) <= set(sources()), flag.id
        assert flag.description
    assert criteria.THRESHOLDS["fever_min_celsius"] == criteria.FEVER_MIN_CELSIUS
    fever = criteria.RED_FLAGS["fever"].conditions[0]
    assert fever.window_days == criteria.FEVER_WINDOW_DAYS  # one window for the Condition and the reading


def test_no_provenance_points_outside_the_repository() -> None:
    outside = re.compile(r"issue \d|\.\./shared|clinical-knowledge\.md|project reference", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for path in KNOWLEDGE_FILES
        if path.is_file()
        for match in outside.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def _document() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(CRITERIA_FILE.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("thresholds", "fever_min_celsius", "value"),
            "hot",
            "thresholds.fever_min_celsius: value must be a decimal",
        ),
        (("thresholds", "fever_min_celsius", "value"), "-1", "must be a finite number, not negative"),
        (("thresholds", "fever_min_celsius", "sources"), ["issue 3"], "unknown sources issue 3"),
        (("thresholds", "older_age_years", "sources"), [], "'sources' must be a non-empty list"),
    ],
)
def test_broken_thresholds_fail_naming_the_entry(path: tuple[str, ...], value: Any, message: str) -> None:
    document = _document()
    *parents, last = path
    node = document
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(KnowledgeError, match=re.escape(message)):
        criteria._thresholds(document)


@pytest.mark.parametrize(
    ("flag", "field", "value", "message"),
    [
        ("fever", "inputs", ["vitals"], "red_flags.fever: 'inputs' must name parts of the record"),
        ("fever", "conditions", [{"value_set": "fever", "timing": "soon"}], "red_flags.fever.conditions[0]"),
        ("fever", "conditions", [{"value_set": "fever", "timing": "active", "window_days": 7}],
         "windowed timing"),
        ("fever", "conditions", [{"value_set": "fever", "timing": "within", "window_days": "fortnight"}],
         "no threshold named 'fortnight'"),
        ("fever", "description", "", "red_flags.fever: 'description' must be non-empty text"),
        ("osteoporosis", "sources", None, "red_flags.osteoporosis: 'sources' must be a non-empty list"),
    ],
)  # fmt: skip
def test_broken_red_flag_criteria_fail_naming_the_flag(
    flag: str, field: str, value: Any, message: str
) -> None:
    document = _document()
    document["red_flags"][flag][field] = value
    with pytest.raises(KnowledgeError, match=re.escape(message)):
        criteria._red_flags(document)


_FEVER_CHECK = """
import json, sys
from datetime import date
from fhir_mappings import build_record, findings
from fhir_mappings.model import InputKind
reading = {
    "resourceType": "Observation", "id": "t", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
    "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-12-04",
    "valueQuantity": {"value": 37.8, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"},
}
parts = {InputKind.PATIENT: [{"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01"}],
         InputKind.CONDITIONS: [{"resourceType": "Bundle", "type": "searchset", "entry": []}],
         InputKind.OBSERVATIONS: [{"resourceType": "Bundle", "type": "searchset",
                                   "entry": [{"resource": reading}]}]}
record, _ = build_record(parts)
print(json.dumps(findings(record, [], date(2026, 12, 5)).red_flags["fever"].status.value))
"""


def _fever_status(package_root: Path) -> str:
    environment = {**os.environ, "PYTHONPATH": str(package_root)}
    result = subprocess.run(
        [sys.executable, "-c", _FEVER_CHECK],
        cwd=package_root,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return str(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_threshold_changes_with_a_data_file_edit_and_no_python_change(tmp_path: Path) -> None:
    """37.8 degC is no fever at the shipped 38.0 threshold; a copy of the package whose data file says 37.5
    (and nothing else changed) reads the same record as fever."""
    copied = tmp_path / "fhir_mappings"
    shutil.copytree(ROOT / "fhir_mappings", copied, ignore=shutil.ignore_patterns("__pycache__"))
    data_file = copied / "knowledge" / CRITERIA_FILE.name
    text = data_file.read_text(encoding="utf-8")
    assert 'value: "38.0"' in text
    data_file.write_text(text.replace('value: "38.0"', 'value: "37.5"', 1), encoding="utf-8")

    assert _fever_status(ROOT) == "absent"
    assert _fever_status(tmp_path) == "present"
