"""The knowledge file: the shipped one is complete and cited; every broken one fails naming rule and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fhir_mappings.model import PROCEDURE_IDS, RED_FLAG_IDS
from service.rules import DEFAULT_RULES_PATH, Category, Provenance, Rules, RulesError, load_rules

SHIPPED = DEFAULT_RULES_PATH.read_text(encoding="utf-8")

UA, MBA, UNA = "usually-appropriate", "may-be-appropriate", "usually-not-appropriate"
# ACR Appropriateness Criteria Low Back Pain (2021), categories per variant and procedure, as gathered
# in the project's reference notes (clinical-knowledge.md section 1); `neuro` applies V4's categories.
COLUMNS = ("V1", "V2", "V3", "V4", "V5", "V6", "V7")
REFERENCE_TABLE: dict[str, tuple[str, ...]] = {
    "xr-lumbar":                            (UNA, UNA, MBA, UNA, UA,  UA,  MBA),
    "mri-lumbar-without-contrast":          (UNA, UNA, UA,  UA,  UA,  UA,  UA),
    "mri-lumbar-without-and-with-contrast": (UNA, UNA, MBA, UA,  UA,  MBA, UA),
    "mri-lumbar-with-contrast":             (UNA, UNA, UNA, UNA, UNA, UNA, UNA),
    "ct-lumbar-without-contrast":           (UNA, UNA, MBA, MBA, MBA, UA,  MBA),
    "ct-lumbar-with-contrast":              (UNA, UNA, UNA, UNA, UNA, UNA, MBA),
    "ct-lumbar-without-and-with-contrast":  (UNA, UNA, UNA, UNA, UNA, UNA, UNA),
    "ct-myelography-lumbar":                (UNA, UNA, MBA, MBA, MBA, MBA, MBA),
}  # fmt: skip


SHIPPED_JSON = json.dumps(yaml.load(SHIPPED, Loader=yaml.CSafeLoader))


def shipped_document() -> dict[str, Any]:
    """The shipped file as plain data, with YAML anchors expanded into independent copies."""
    document = json.loads(SHIPPED_JSON)
    assert isinstance(document, dict)
    return document


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "rules.yaml"
    text = yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def test_shipped_rules_load_with_their_version(rules: Rules) -> None:
    assert rules.version == yaml.safe_load(SHIPPED)["version"]
    assert set(rules.procedures) == set(PROCEDURE_IDS)


def test_shipped_rules_name_every_red_flag_and_every_variant_of_the_issue(rules: Rules) -> None:
    assert set(rules.red_flag_titles) == set(RED_FLAG_IDS)
    assert set(rules.variants) == {"V1", "V2", "V3", "V4", "V5", "V6", "V7", "neuro"}


@pytest.mark.parametrize("procedure", PROCEDURE_IDS)
def test_shipped_categories_match_the_acr_2021_table(rules: Rules, procedure: str) -> None:
    expected = dict(zip(COLUMNS, REFERENCE_TABLE[procedure], strict=True))
    expected["neuro"] = expected["V4"]
    actual = {
        variant_id: variant.cells[procedure].category.value for variant_id, variant in rules.variants.items()
    }
    assert actual == expected


def test_every_shipped_cell_has_a_known_provenance_and_a_resolvable_citation(rules: Rules) -> None:
    for variant in rules.variants.values():
        assert set(variant.cells) == set(PROCEDURE_IDS)
        for cell in variant.cells.values():
            assert cell.provenance in Provenance
            citation = rules.citations[cell.citation]
            assert citation.link.startswith("https://")


def test_shipped_provenance_marks_what_acr_did_not_state_as_presumed(rules: Rules) -> None:
    """V1/V2 cells were read in ACR's document; V3-V7 unlisted procedures are inferred as UNA."""
    for variant_id in ("V1", "V2"):
        assert {cell.provenance for cell in rules.variants[variant_id].cells.values()} == {
            Provenance.VERIFIED
        }
    for variant_id in ("V3", "V4", "V5", "V6", "V7"):
        for cell in rules.variants[variant_id].cells.values():
            expected = (
                Provenance.PRESUMED
                if cell.category is Category.USUALLY_NOT_APPROPRIATE
                else Provenance.SECONDARY
            )
            assert cell.provenance is expected, (variant_id, cell.procedure)


def test_fracture_risk_names_radiography_first_line_citing_acp_2011(rules: Rules) -> None:
    first_line = rules.variants["V6"].first_line
    assert first_line is not None
    assert (first_line.procedures, first_line.citation) == (("xr-lumbar",), "acp-2011")
    assert first_line.note is not None
    assert "compression" in first_line.note


def test_every_shipped_procedure_has_radiation_and_a_code_to_order_it_by(rules: Rules) -> None:
    radiation = {procedure.id: procedure.radiation.rank for procedure in rules.procedures.values()}
    assert radiation["mri-lumbar-without-contrast"] == 0
    assert radiation["xr-lumbar"] == radiation["ct-lumbar-without-contrast"] == 3
    assert radiation["ct-myelography-lumbar"] == radiation["ct-lumbar-without-and-with-contrast"] == 4
    assert all(procedure.codes for procedure in rules.procedures.values())


def test_shipped_procedures_say_which_give_iv_contrast(rules: Rules) -> None:
    """Myelography's contrast is intrathecal: it is not an IV-contrast study."""
    with_contrast = {procedure.id for procedure in rules.procedures.values() if procedure.iv_contrast}
    assert with_contrast == {
        "mri-lumbar-with-contrast",
        "mri-lumbar-without-and-with-contrast",
        "ct-lumbar-with-contrast",
        "ct-lumbar-without-and-with-contrast",
    }
    assert rules.contrast_preference.citation in rules.citations


def test_shipped_urgent_study_is_mri_without_contrast_and_age_over_70_implies_over_50(rules: Rules) -> None:
    assert rules.urgent.study == "mri-lumbar-without-contrast"
    assert rules.without_implied(["age-over-50", "osteoporosis", "age-over-70"]) == (
        "osteoporosis",
        "age-over-70",
    )
    assert rules.without_implied(["age-over-50"]) == ("age-over-50",)


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set the value at a dotted path (list indexes as numbers)."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


V7_CELL = "variants.V7.categories.ct-lumbar-with-contrast"
BROKEN: list[tuple[str, Mutation, str]] = [
    ("unknown category", _set(f"{V7_CELL}.category", "maybe"), f"{V7_CELL}: unknown category 'maybe'"),
    ("unknown provenance", _set(f"{V7_CELL}.provenance",
     "hearsay"), f"{V7_CELL}: unknown provenance 'hearsay'"),
    ("unknown citation", _set(f"{V7_CELL}.citation",
     "nope"), f"{V7_CELL}: unknown citation in field 'citation' 'nope'"),
    ("missing citation", _delete(f"{V7_CELL}.citation"), f"{V7_CELL}: missing field 'citation'"),
    ("missing cell", _delete("variants.V6.categories.ct-myelography-lumbar"),
     "variants.V6.categories: missing cells for procedures: ct-myelography-lumbar"),
    ("cell for an unknown procedure", _set("variants.V6.categories.pet-ct", {"category": UA}),
     "variants.V6.categories.pet-ct: unknown procedure"),
    ("unknown red flag in a trigger", _set("variants.V7.when.any_of.0", "cancer"),
     "variants.V7.when.any_of[0]: unknown red flag or condition 'cancer'"),
    ("unknown term in at_least", _set("variants.V7.when.any_of.5.of.2", "symptomDays>=29"),
     "variants.V7.when.any_of[5].of[2]: unknown red flag or condition 'symptomDays>=29'"),
    ("at_least above its terms", _set("variants.V7.when.any_of.5.at_least", 4),
     "variants.V7.when.any_of[5].at_least: must be between 1 and 3"),
    ("two operators in one term", _set("variants.V4.when", {"any_of": ["cauda-equina"], "all_of": ["fever"]}),
     "variants.V4.when: must have exactly one of any_of, all_of"),
    ("empty any_of", _set("variants.V4.when", {"any_of": []}),
     "variants.V4.when.any_of: must be a non-empty list"),
    ("misspelt field", _set("variants.V4.categorys", {}), "variants.V4: unknown field 'categorys'"),
    ("unknown variant in excluded_by", _set("variants.V2.excluded_by", ["V4", "V9"]),
     "variants.V2: unknown variant in field 'excluded_by' 'V9'"),
    ("excluded_by a fallback", _set("variants.V2.excluded_by", ["V1"]),
     "variants.V2: excluded_by variant 'V1' must have its own trigger"),
    ("when and otherwise", _set("variants.V1.when", "fever"),
     "variants.V1: needs either 'when' or 'otherwise: true'"),
    ("neither when nor otherwise", _delete("variants.V1.otherwise"),
     "variants.V1: needs either 'when' or 'otherwise: true'"),
    ("two fallbacks", _set("variants.V2", {"title": "x", "otherwise": True, "citation": "acr-lbp-2021",
                                           "categories": shipped_document()["variants"]["V1"]["categories"]}),
     "variants.V1: only one variant may be 'otherwise' (also V2)"),
    # Red-flag titles and procedure modalities are the registry's (fhir_mappings/knowledge), never restated.
    ("red flag titles restated", _set("red_flags", {"fever": "fever"}), "unknown field 'red_flags'"),
    ("unknown procedure", _set("procedures.pet-ct", {}), "procedures.pet-ct: unknown procedure"),
    ("missing procedure", _delete("procedures.ct-myelography-lumbar"),
     "procedures: missing procedures: ct-myelography-lumbar"),
    ("modality restated", _set("procedures.xr-lumbar.modality", "XR"),
     "procedures.xr-lumbar: unknown field 'modality'"),
    ("undeclared radiation level", _set("procedures.xr-lumbar.radiation", 9),
     "procedures.xr-lumbar: unknown radiation level 9"),
    ("radiation as text", _set("procedures.xr-lumbar.radiation", "high"),
     "procedures.xr-lumbar.radiation: must be an integer, got text 'high'"),
    ("code system not a URI", _set("procedures.xr-lumbar.codes.0.system", "cpt"),
     "procedures.xr-lumbar.codes[0].system: must be a code system URI"),
    ("citation without doi or url", _delete("citations.acr-lbp-2021-summary.url"),
     "citations.acr-lbp-2021-summary: needs a doi or a url"),
    ("relative citation url", _set("citations.acr-lbp-2021.url", "/docs/69483"),
     "citations.acr-lbp-2021.url: must be an absolute http(s) URL"),
    ("year as text", _set("citations.acr-lbp-2021.year", "2021"),
     "citations.acr-lbp-2021.year: must be an integer, got text '2021'"),
    ("version as a number", _set("version", 3), "version: must be non-empty text, got int 3"),
    ("unknown variable", _set("variables.bmi", {"type": "integer", "description": "x"}),
     "variables.bmi: unknown variable"),
    ("variable of the wrong type", _set("variables.symptomDays.type", "boolean"),
     "variables.symptomDays: type 'boolean' does not match the engine's 'integer'"),
    ("condition on an undeclared variable", _set("conditions.symptomDays>=28.variable", "weeks"),
     "conditions.symptomDays>=28: unknown variable 'weeks'"),
    ("operator the type has not", _set("conditions.conservative-therapy.operator", ">="),
     "conditions.conservative-therapy: unknown operator '>='"),
    ("value of the wrong type", _set("conditions.symptomDays>=28.value", "28"),
     "conditions.symptomDays>=28.value: must be an integer, got text '28'"),
    ("condition named like a red flag", _set("conditions.fever", {}),
     "conditions.fever: a condition may not reuse a red-flag id"),
    ("unknown weak factor", _set("weak_factors.flags", ["age-over-50", "tiredness"]),
     "weak_factors: unknown red flag in field 'flags' 'tiredness'"),
    ("urgent trigger with an unknown flag", _set("urgent.when", {"any_of": ["stroke"]}),
     "urgent.when.any_of[0]: unknown red flag or condition 'stroke'"),
    ("referral without codes", _set("conservative_care.referral.codes", []),
     "conservative_care.referral.codes: must be a non-empty list"),
    ("guideline link to an unknown citation", _set("guideline.links", ["acr-lbp-2021", "who-2023"]),
     "guideline: unknown citation in field 'links[1]' 'who-2023'"),
    ("missing section", _delete("variants"), "missing field 'variants'"),
    ("first-line procedure unknown", _set("variants.V6.first_line.procedures", ["xr-lumbar", "pet-ct"]),
     "variants.V6.first_line: unknown procedure in field 'procedures' 'pet-ct'"),
    ("first-line procedure not usually appropriate", _set("variants.V6.first_line.procedures",
     ["mri-lumbar-without-and-with-contrast"]), "variants.V6.first_line: first-line procedure "
     "'mri-lumbar-without-and-with-contrast' is rated may-be-appropriate in this variant"),
    ("first-line without citation", _delete("variants.V6.first_line.citation"),
     "variants.V6.first_line: missing field 'citation'"),
    ("first-line with an unknown citation", _set("variants.V6.first_line.citation", "acp-2099"),
     "variants.V6.first_line: unknown citation in field 'citation' 'acp-2099'"),
    ("procedure without iv_contrast", _delete("procedures.ct-lumbar-with-contrast.iv_contrast"),
     "procedures.ct-lumbar-with-contrast: missing field 'iv_contrast'"),
    ("iv_contrast as text", _set("procedures.ct-lumbar-with-contrast.iv_contrast", "yes"),
     "procedures.ct-lumbar-with-contrast.iv_contrast: must be true or false, got text 'yes'"),
    ("contrast preference without citation", _delete("contrast_preference.citation"),
     "contrast_preference: missing field 'citation'"),
    ("urgent study unknown", _set("urgent.study", "pet-ct"),
     "urgent: unknown procedure in field 'study' 'pet-ct'"),
    ("urgent study not right for cauda equina", _set("urgent.study", "ct-lumbar-without-contrast"),
     "urgent: study 'ct-lumbar-without-contrast' is rated may-be-appropriate in variant V4, which an "
     "urgent red flag triggers"),
    ("implied flag unknown", _set("implied_red_flags.age-over-70", ["age-over-5"]),
     "implied_red_flags.age-over-70: unknown red flag 'age-over-5'"),
    ("implying flag unknown", _set("implied_red_flags.age-over-80", ["age-over-50"]),
     "implied_red_flags.age-over-80: unknown red flag"),
    ("flag implying itself", _set("implied_red_flags.age-over-70", ["age-over-70"]),
     "implied_red_flags.age-over-70: a red flag cannot imply itself"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutation", "message"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_rules_fail_naming_the_rule_and_field(
    tmp_path: Path, mutation: Mutation, message: str
) -> None:
    document = shipped_document()
    mutation(document)
    with pytest.raises(RulesError) as raised:
        load_rules(write(tmp_path, document))
    assert message in str(raised.value)
    assert str(raised.value).startswith("rules.yaml: ")  # and the file it is in


def test_a_duplicated_cell_fails_instead_of_silently_winning(tmp_path: Path) -> None:
    cell = (
        "      xr-lumbar: {category: usually-not-appropriate, provenance: presumed, citation: acr-lbp-2021}\n"
    )
    text = SHIPPED.replace(cell, cell + cell.replace("usually-not", "usually"), 1)
    assert text != SHIPPED
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=r"duplicate key 'xr-lumbar'"):
        load_rules(path)


def test_invalid_yaml_fails_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules.yaml is not valid YAML"):
        load_rules(path)


def test_a_document_that_is_not_a_mapping_fails(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"must be a mapping, got a list"):
        load_rules(write(tmp_path, ["version"]))


def test_a_missing_file_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"cannot read rules file .*absent.yaml"):
        load_rules(tmp_path / "absent.yaml")


def test_a_valid_edit_loads_and_is_applied(tmp_path: Path) -> None:
    """The loader reads the file it is given, not a cached copy: an edited cell changes the rules."""
    document = shipped_document()
    document["variants"]["V7"]["categories"]["ct-lumbar-with-contrast"]["category"] = UNA
    document["version"] = "test-1"
    rules = load_rules(write(tmp_path, document))
    assert rules.version == "test-1"
    assert rules.variants["V7"].cells["ct-lumbar-with-contrast"].category is Category.USUALLY_NOT_APPROPRIATE
