"""Validation with the fhir.resources R4B models, only for resources that feed a finding.

Validating a whole 200-entry Bundle costs about 100 ms; a single Condition about 0.15 ms. The mappings
first pick candidates with cheap dict walks, then validate just those here. A resource that fails is
skipped and reported as a `DataQualityNote` naming the fields and error types, never their values
(values may be PHI).
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from fhir_mappings.fhirjson import Resource, resource_id, resource_type
from fhir_mappings.model import DataQualityNote

if TYPE_CHECKING:
    from pydantic import ValidationError

# The resource types the mappings read, and their R4B model module.
_MODEL_MODULES = {
    "Patient": "patient",
    "Condition": "condition",
    "Observation": "observation",
    "MedicationRequest": "medicationrequest",
    "MedicationStatement": "medicationstatement",
    "Medication": "medication",
    "Procedure": "procedure",
    "ServiceRequest": "servicerequest",
}
_MAX_ERRORS_NAMED = 5


@cache
def _model_class(kind: str) -> Any:
    # Imported on first use so importing fhir_mappings stays cheap (the R4B models take ~0.4 s).
    module = import_module(f"fhir.resources.R4B.{_MODEL_MODULES[kind]}")
    return getattr(module, kind)


def is_known_resource_type(kind: str) -> bool:
    """Whether `kind` is an R4B resource type (fhir.resources raises KeyError or ValueError otherwise)."""
    if kind in _MODEL_MODULES:
        return True
    return _is_r4b_type(kind)


@cache
def _is_r4b_type(kind: str) -> bool:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return True


def _describe(error: ValidationError) -> str:
    """`onsetDateTime (value_error); code.coding.0 (dict_type)`: paths and error types, no values."""
    named = [
        f"{'.'.join(str(part) for part in detail['loc']) or '(resource)'} ({detail['type']})"
        for detail in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    more = len(named) - _MAX_ERRORS_NAMED
    text = "; ".join(named[:_MAX_ERRORS_NAMED])
    return f"{text}; and {more} more" if more > 0 else text


class Validator:
    """Validates each resource at most once and keeps the notes for the ones that failed."""

    def __init__(self) -> None:
        self._verdicts: dict[int, bool] = {}
        self._keep_alive: list[Resource] = []  # ids of live objects only stay unique while they live
        self.notes: list[DataQualityNote] = []
        self._noted: set[tuple[int, str]] = set()

    def is_valid(self, resource: Resource) -> bool:
        key = id(resource)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._validate(resource)
            self._verdicts[key] = verdict
            self._keep_alive.append(resource)
        return verdict

    def note(self, resource: Resource, problem: str) -> None:
        """Notes a problem once per resource, however many findings it was read for."""
        key = (id(resource), problem)
        if key in self._noted:
            return
        self._noted.add(key)
        self._keep_alive.append(resource)
        self.notes.append(
            DataQualityNote(resource_type(resource) or "unknown", resource_id(resource), problem)
        )

    def _validate(self, resource: Resource) -> bool:
        kind = resource_type(resource)
        if kind not in _MODEL_MODULES:
            self.note(resource, "not a resource type the mappings read")
            return False
        from pydantic import ValidationError  # imported with the models, on first use

        try:
            _model_class(kind).model_validate(resource)
        except ValidationError as error:
            self.note(resource, f"failed FHIR R4B validation: {_describe(error)}")
            return False
        except (TypeError, ValueError, KeyError) as error:
            # fhir.resources raises these for shapes pydantic never sees (e.g. an unknown resourceType).
            self.note(resource, f"failed FHIR R4B validation: {type(error).__name__}")
            return False
        return True
