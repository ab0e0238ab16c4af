"""Raw prefetch values, FHIR search answers and `/evaluate` Bundles -> a `PatientRecord`.

Each value is a Bundle (searchset, collection, transaction; `type` optional), a bare resource, `None`
(the client has no data: supplied, empty) or an OperationOutcome (a failed fetch: not supplied).
Resources are sorted by their own type whatever part they came in (a searchset may `_include` others).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_mappings.fhirjson import (
    Resource,
    as_dict,
    as_list,
    as_text,
    child,
    is_object,
    reference_key,
    resource_id,
    resource_type,
    status_of,
)
from fhir_mappings.model import DataQualityNote, InputKind, PatientRecord
from fhir_mappings.orders import is_lumbar_imaging
from fhir_mappings.validation import is_known_resource_type

KIND_OF_TYPE: Mapping[str, InputKind] = {
    "Patient": InputKind.PATIENT,
    "Condition": InputKind.CONDITIONS,
    "Observation": InputKind.OBSERVATIONS,
    "MedicationRequest": InputKind.MEDICATIONS,
    "MedicationStatement": InputKind.MEDICATIONS,
    "Medication": InputKind.MEDICATIONS,
    "Procedure": InputKind.PROCEDURES,
    "ServiceRequest": InputKind.SERVICE_REQUESTS,
}
_NOT_AN_ORDER_TO_JUDGE = frozenset({"completed", "revoked", "entered-in-error"})
_LIST_FIELDS: Mapping[InputKind, str] = {
    InputKind.CONDITIONS: "conditions",
    InputKind.OBSERVATIONS: "observations",
    InputKind.MEDICATIONS: "medications",
    InputKind.PROCEDURES: "procedures",
    InputKind.SERVICE_REQUESTS: "service_requests",
}


@dataclass(slots=True)
class _Sorter:
    """Puts resources in their lists, and notes the ones that cannot be used at all."""

    resources: dict[InputKind, list[Resource]] = field(default_factory=dict)
    notes: list[DataQualityNote] = field(default_factory=list)

    def add(self, resource: Any) -> None:
        if not is_object(resource):
            self.notes.append(
                DataQualityNote("unknown", None, "entry resource is not a JSON object; skipped")
            )
            return
        kind_name = resource_type(resource)
        kind = KIND_OF_TYPE.get(kind_name or "")
        if kind is not None:
            self.resources.setdefault(kind, []).append(resource)
        elif kind_name is None or not is_known_resource_type(kind_name):
            problem = "no resourceType" if kind_name is None else "unknown FHIR R4 resource type"
            self.notes.append(
                DataQualityNote(kind_name or "unknown", resource_id(resource), f"{problem}; skipped")
            )
        # Other known types (Encounter, Practitioner, OperationOutcome search outcomes...) are not read.

    def record(self, supplied: set[InputKind], incomplete: set[InputKind]) -> PatientRecord:
        """A kind that arrived without being supplied (e.g. `_include`d) counts only as incomplete."""
        record = PatientRecord()
        patients = self.resources.get(InputKind.PATIENT, [])
        if patients:
            record.patient = patients[0]
            if len({resource_id(patient) for patient in patients}) > 1:
                self.notes.append(
                    DataQualityNote(
                        "Patient", resource_id(patients[0]), "more than one Patient; the first is used"
                    )
                )
        patient_key = f"Patient/{resource_id(record.patient)}" if resource_id(record.patient) else None
        for kind, name in _LIST_FIELDS.items():
            if kind in supplied or kind in self.resources:
                setattr(
                    record,
                    name,
                    [r for r in self.resources.get(kind, []) if self._same_patient(r, patient_key)],
                )
        for kind in InputKind:
            arrived = kind in self.resources
            if kind in incomplete or (arrived and kind not in supplied):
                record.incomplete.add(kind)
        return record

    def _same_patient(self, resource: Resource, patient_key: str | None) -> bool:
        """False for a resource whose subject is plainly another patient: it is skipped and noted.

        Only "Patient/<id>" references (relative or absolute) are compared; others (urn:uuid, contained)
        cannot be matched without the sender's identifiers and are kept.
        """
        if patient_key is None:
            return True
        subject_value = resource.get("subject")
        # Fast path for almost every resource of a record: a relative reference to this very patient.
        if type(subject_value) is dict and subject_value.get("reference") == patient_key:
            return True
        subject = reference_key(subject_value)
        if subject is None or not subject.startswith("Patient/") or subject == patient_key:
            return True
        self.notes.append(
            DataQualityNote(
                resource_type(resource) or "unknown",
                resource_id(resource),
                "subject is another patient; skipped",
            )
        )
        return False


def _bundle_resources(bundle: Mapping[str, Any]) -> Iterator[Any]:
    for entry in as_list(bundle.get("entry")):
        if is_object(entry) and "resource" in entry:
            yield entry["resource"]


def _has_next_page(bundle: Mapping[str, Any]) -> bool:
    return any(
        as_text(child(link, "relation")) == "next" and as_text(child(link, "url"))
        for link in as_list(bundle.get("link"))
    )


def _is_bundle(value: Mapping[str, Any]) -> bool:
    return resource_type(value) == "Bundle" or (
        resource_type(value) is None and isinstance(value.get("entry"), list)
    )


def build_record(parts: Mapping[InputKind, Sequence[Any]]) -> tuple[PatientRecord, list[DataQualityNote]]:
    """Prefetch values / fetch answers per input kind -> the record, and notes on what was skipped.

    A kind is supplied when at least one of its values is data (a Bundle, a resource, or `None`); it is
    incomplete when another of its values failed (an OperationOutcome or not JSON data), or when its last
    Bundle still points at a next page that was not fetched.
    """
    sorter = _Sorter()
    supplied: set[InputKind] = set()
    incomplete: set[InputKind] = set()
    for kind, values in parts.items():
        failed = False
        last_bundle: Mapping[str, Any] | None = None
        delivered = False
        for value in values if isinstance(values, Sequence) and not isinstance(values, str) else [values]:
            if value is None:
                delivered = True
                continue
            data = as_dict(value)
            if data is None or resource_type(data) == "OperationOutcome":
                failed = True
                continue
            delivered = True
            if _is_bundle(data):
                last_bundle = data
                for resource in _bundle_resources(data):
                    sorter.add(resource)
            else:
                sorter.add(data)
        if delivered:
            supplied.add(kind)
            if failed or (last_bundle is not None and _has_next_page(last_bundle)):
                incomplete.add(kind)
    return sorter.record(supplied, incomplete), sorter.notes


def record_from_bundle(
    bundle: Mapping[str, Any],
) -> tuple[PatientRecord, list[Mapping[str, Any]], list[DataQualityNote]]:
    """An `/evaluate` Bundle -> the record, the lumbar-imaging ServiceRequests to judge, and notes.

    A kind is supplied when the Bundle holds at least one resource of it; the caller reports the absent
    kinds as data gaps, so "none sent" never reads as "no red flags". Lumbar imaging that is already
    done or withdrawn (completed, revoked, entered-in-error) is history, not an order to judge.
    """
    sorter = _Sorter()
    orders: list[Mapping[str, Any]] = []
    for resource in _bundle_resources(bundle):
        if is_lumbar_imaging(resource) and status_of(resource) not in _NOT_AN_ORDER_TO_JUDGE:
            orders.append(resource)
        else:
            sorter.add(resource)
    return sorter.record(set(sorter.resources), set()), orders, sorter.notes
