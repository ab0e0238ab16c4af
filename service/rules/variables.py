"""The variables a rule condition may read, with their types and how each is taken from the findings.

The knowledge file declares the variables it uses; `load_rules` checks each declaration against this
table, so a misspelt or mistyped variable fails at start-up, not at request time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fhir_mappings.model import Findings

from .model import VariableType

# What a variable reads as: a value, or None when the record could not tell (never a default).
VariableValue = int | bool | None


def _symptom_days(findings: Findings) -> VariableValue:
    return findings.episode.symptom_days


def _conservative_therapy(findings: Findings) -> VariableValue:
    if findings.therapy.documented:
        return True
    # Not documented is only "no therapy" when the inputs that would show it were supplied.
    if any("therapy" in gap.affects for gap in findings.data_gaps):
        return None
    return False


def _age_years(findings: Findings) -> VariableValue:
    return findings.age_years


VARIABLE_TYPES: Mapping[str, VariableType] = {
    "symptomDays": "integer",
    "conservativeTherapy": "boolean",
    "ageYears": "integer",
}

VARIABLE_READERS: Mapping[str, Callable[[Findings], VariableValue]] = {
    "symptomDays": _symptom_days,
    "conservativeTherapy": _conservative_therapy,
    "ageYears": _age_years,
}
