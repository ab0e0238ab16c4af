"""Value sets as data: every shipped set loads and cites a source; bad files fail naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings import ValueSetError, check_terminology
from fhir_mappings.criteria import ConditionCriterion, Timing
from fhir_mappings.terminology import (
    ICD10CM,
    KNOWN_SYSTEMS,
    LOINC,
    SNOMED,
    CodeIndex,
    load_value_sets,
    load_value_sets_from,
    parse_value_set,
)


def test_shipped_value_sets_load_and_the_criteria_agree_with_them() -> None:
    check_terminology()
    sets = load_value_sets()
    assert len(sets) >= 20
    for vs in sets.values():
        assert vs.title
        assert vs.source
        assert set(vs.codes) <= KNOWN_SYSTEMS
        assert vs.codes or vs.text_terms


def test_cms166_sources_name_their_oid_and_release() -> None:
    low_back_pain = load_value_sets()["low-back-pain"]
    assert "2.16.840.1.113883.3.464.1003.113.12.1001" in low_back_pain.source
    assert "2017" in low_back_pain.source
    assert "cms166v7" in low_back_pain.sources
    for value_set in load_value_sets().values():
        assert ("CMS166" in value_set.source) == ("cms166v7" in value_set.sources), value_set.id


@pytest.mark.parametrize(
    ("code", "matches"),
    [
        ("M54.5", True),
        ("M545", True),
        ("M54.50", True),  # a child of the 2017 leaf M54.5
        ("m54.59", True),
        (" M54.51 ", True),
        ("M54.6", False),  # thoracic spine pain
        ("M5", False),
        ("", False),
    ],
)
def test_icd10_matching_with_or_without_dot_and_by_category(code: str, matches: bool) -> None:
    index = CodeIndex([load_value_sets()["low-back-pain"]])
    assert (index.matching(ICD10CM, code) == {"low-back-pain"}) is matches


@pytest.mark.parametrize(
    ("code", "matches"),
    [
        ("C00.0", True),
        ("C96.9", True),
        ("C97", False),
        ("B99", False),
        ("C44.01", False),
        ("C43.9", True),
        ("Z85.828", False),
        ("Z85.820", True),
        ("Z85", True),
    ],
)
def test_icd10_ranges_and_exclusions(code: str, matches: bool) -> None:
    index = CodeIndex([load_value_sets()["malignancy"]])
    assert bool(index.matching(ICD10CM, code)) is matches


def test_other_systems_match_exactly_and_unknown_systems_never() -> None:
    index = CodeIndex([load_value_sets()["body-temperature"], load_value_sets()["fever"]])
    assert index.matching(LOINC, "8310-5") == {"body-temperature"}
    assert index.matching(LOINC, "8310") == set()
    assert index.matching(SNOMED, "386661006") == {"fever"}
    assert index.matching("http://snomed.info/sct/", "386661006") == set()
    assert index.matching(None, "8310-5") == set()


def _valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "x",
        "title": "X",
        "source": "test",
        "sources": ["icd10cm-fy2026"],
        "codes": {ICD10CM: ["A00"]},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_valid(codes={"http://example.org/cs": ["1"]}), "unknown code system URI"),
        (_valid(codes={}), "empty"),
        (_valid(codes={ICD10CM: []}), "non-empty list"),
        (_valid(codes={ICD10CM: ["not a code"]}), "not an ICD-10-CM code"),
        (_valid(codes={SNOMED: ["12"]}), "not a valid code"),
        (_valid(codes={LOINC: ["8310"]}), "not a valid code"),
        (_valid(source=None), "'source'"),
        (_valid(sources=None), "'sources' must be a non-empty list of source ids"),
        (_valid(sources=[]), "'sources' must be a non-empty list of source ids"),
        (_valid(sources=["issue 3"]), "unknown sources issue 3"),
        (_valid(title=""), "'title'"),
        (_valid(exclude={SNOMED: ["123456"]}), "only supported for ICD-10-CM"),
        (_valid(text_terms="prednisone"), "'text_terms'"),
        ([], "must be a JSON object"),
    ],
)
def test_invalid_value_sets_fail_naming_the_file(raw: Any, message: str) -> None:
    with pytest.raises(ValueSetError, match=message) as raised:
        parse_value_set("broken.json", raw)
    assert "broken.json" in str(raised.value)


def test_loader_checks_file_names_and_json(tmp_path: Path) -> None:
    (tmp_path / "y.json").write_text(json.dumps(_valid()))
    with pytest.raises(ValueSetError, match=r"y\.json: id 'x' differs"):
        load_value_sets_from(tmp_path)
    (tmp_path / "y.json").unlink()
    (tmp_path / "z.json").write_text("{not json")
    with pytest.raises(ValueSetError, match=r"z\.json: cannot be read as JSON"):
        load_value_sets_from(tmp_path)
    (tmp_path / "z.json").unlink()
    with pytest.raises(ValueSetError, match="no value sets"):
        load_value_sets_from(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps(_valid()))
    assert set(load_value_sets_from(tmp_path)) == {"x"}


def test_a_windowed_criterion_needs_its_window() -> None:
    with pytest.raises(ValueError, match="window"):
        ConditionCriterion("fever", Timing.WITHIN)
    with pytest.raises(ValueError, match="window"):
        ConditionCriterion("fever", Timing.ACTIVE, 7)
