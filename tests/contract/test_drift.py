"""The contract and the code name the same things: enums, error codes, shipped examples.

openapi.yaml repeats a few vocabularies the code owns (red flags, procedures, categories, ratings, input
kinds, error codes). These tests read both sides, so a value added in one place and not the other fails
here, with its name, rather than as a confusing contract violation at run time.
"""

from __future__ import annotations

import ast
import json
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.model import PROCEDURE_IDS, RED_FLAG_IDS, InputKind
from service.errors import ApiError
from service.rules.decision import Appropriateness, PamaRating
from service.rules.model import Category, Provenance
from tests.support.contract import component_validator, schema_errors, spec_document

REPOSITORY = Path(__file__).resolve().parents[2]


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec_document()["components"]["schemas"][name]
    return found


def values(enum: type[Enum]) -> list[str]:
    return sorted(str(member.value) for member in enum)


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        ("RedFlagId", sorted(RED_FLAG_IDS)),
        ("ProcedureId", sorted(PROCEDURE_IDS)),
        ("InputKind", values(InputKind)),
        ("Appropriateness", values(Appropriateness)),
        ("PamaRating", values(PamaRating)),
    ],
)
def test_enums_match_the_code(component: str, expected: list[str]) -> None:
    assert sorted(schema(component)["enum"]) == expected


def test_deciding_cell_vocabularies_match_the_rules_model() -> None:
    properties = schema("DecidingCell")["properties"]
    assert sorted(properties["category"]["enum"]) == values(Category)
    assert sorted(properties["provenance"]["enum"]) == values(Provenance)


def _raised_error_codes() -> set[tuple[int, str]]:
    """(status, code) of every `ApiError(<status>, "<code>", ...)` written in the service's source."""
    found: set[tuple[int, str]] = set()
    for path in (REPOSITORY / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == ApiError.__name__
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, int)
                and isinstance(node.args[1], ast.Constant)
            ):
                found.add((node.args[0].value, str(node.args[1].value)))
    return found


def test_every_error_code_the_service_raises_is_in_the_contract() -> None:
    raised = _raised_error_codes()
    assert (404, "unknown-service") in raised  # the scan finds the calls it is meant to find
    documented = set(schema("ErrorBody")["properties"]["error"]["enum"]) | {"unauthorized"}
    assert {code for _, code in raised} - documented == set()


def test_every_status_the_service_raises_is_documented_somewhere() -> None:
    documented = {
        status
        for item in spec_document()["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
        for status in operation["responses"]
    } | {"405"}  # any undocumented method: components/responses/MethodNotAllowed
    assert {str(status) for status, _ in _raised_error_codes()} - documented == set()


@pytest.mark.parametrize(
    ("file", "component"),
    [("order-sign-lumbar-mri.json", "HookRequest"), ("evaluate-bundle.json", "Bundle")],
)
def test_the_shipped_examples_are_valid_requests(file: str, component: str) -> None:
    """The README's curl examples send these files: they must be what the contract asks for."""
    document = json.loads((REPOSITORY / "examples" / file).read_text(encoding="utf-8"))
    assert schema_errors(component_validator(component), document) == []
