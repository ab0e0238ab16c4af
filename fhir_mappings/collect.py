"""What reading a record gathers: evidence per red flag, and why some records could not be used."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from fhir_mappings.fhirdates import DateSpan
from fhir_mappings.fhirjson import Coding, Resource, coding_list, is_object, local_reference
from fhir_mappings.model import Evidence, InputKind
from fhir_mappings.validation import Validator


class Problem(StrEnum):
    """Why a record that could show a red flag was not used; the flag is then unknown, never absent."""

    UNREADABLE = "unreadable"  # failed FHIR validation
    UNDATED = "undated"  # a time window applies, and the record has no date
    UNIT = "unit"  # a measurement without a unit the mappings know
    IMPLAUSIBLE = "implausible"  # a measurement outside the physiological range


@dataclass(slots=True)
class Unresolved:
    flags: set[str] = field(default_factory=set)
    kinds: set[InputKind] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Collector:
    as_of: date
    validator: Validator = field(default_factory=Validator)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    unresolved: dict[Problem, Unresolved] = field(default_factory=dict)
    # flag -> kinds with an unresolved record for it
    unresolved_kinds: dict[str, set[InputKind]] = field(default_factory=dict)

    def add(self, flag: str, evidence: Evidence) -> None:
        self.evidence.setdefault(flag, []).append(evidence)

    def cannot_use(
        self, resource: Resource, problem: Problem, kind: InputKind, flags: tuple[str, ...] | set[str]
    ) -> None:
        entry = self.unresolved.setdefault(problem, Unresolved())
        entry.flags.update(flags)
        entry.kinds.add(kind)
        entry.resources.add(f"{local_reference(resource)}@{id(resource)}")
        for flag in flags:
            self.unresolved_kinds.setdefault(flag, set()).add(kind)

    def codings_of(self, resource: Resource, field_name: str = "code") -> list[Coding]:
        """A resource's codings; a `code` that is not a CodeableConcept is noted and reads as none."""
        concept = resource.get(field_name)
        if concept is not None and (
            not is_object(concept) or not isinstance(concept.get("coding", []), list)
        ):
            self.validator.note(resource, f"{field_name} is not a CodeableConcept; skipped")
            return []
        return coding_list(concept)

    def usable(self, resource: Resource, kind: InputKind, flags: tuple[str, ...] | set[str]) -> bool:
        """Validates a candidate; one that fails leaves its flags unknown (and a data-quality note)."""
        if self.validator.is_valid(resource):
            return True
        self.cannot_use(resource, Problem.UNREADABLE, kind, flags)
        return False

    def in_window(
        self,
        resource: Resource,
        span: DateSpan | None,
        window_days: int,
        kind: InputKind,
        flags: tuple[str, ...],
    ) -> DateSpan | None:
        """The record's date when it falls in the window, else None; an undated record is reported.

        Records in the window are not validated here: the caller validates the ones that become evidence.
        """
        if span is not None:
            return span if span.within_last(window_days, self.as_of) else None
        if self.usable(resource, kind, flags):
            self.cannot_use(resource, Problem.UNDATED, kind, flags)
        return None


def evidence_for(
    resource: Resource, coding: Coding | None, span: DateSpan | None, detail: str | None = None
) -> Evidence:
    system, code, display = coding or (None, None, None)
    return Evidence(
        reference=local_reference(resource),
        code=code,
        system=system,
        display=display,
        date=span.text if span else None,
        detail=detail,
    )
