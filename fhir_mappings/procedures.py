"""Procedures and ServiceRequests -> prior lumbar surgery, and conservative therapy in the episode.

Prior lumbar surgery: a completed Procedure with a lumbar spine surgery code, at any date.
Conservative therapy: a Procedure (completed or in progress) or a ServiceRequest (active or completed)
for physical therapy or spinal manipulation dated on or after the episode's onset (the record's latest
possible day against the onset's earliest, so a record is not wrongly left out). Undated therapy records
cannot be placed in the episode and are not counted; when the episode's onset is unknown, every dated
therapy record counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fhir_mappings.collect import Collector, evidence_for
from fhir_mappings.criteria import LUMBAR_SURGERY, PHYSICAL_THERAPY
from fhir_mappings.fhirdates import DateSpan, parse_fhir_date
from fhir_mappings.fhirjson import Coding, Resource, child, resource_type, status_of
from fhir_mappings.model import ConservativeTherapy, Episode, InputKind
from fhir_mappings.terminology import code_index

SURGERY = ("prior-lumbar-surgery",)
THERAPY_STATUS = {
    "Procedure": frozenset({"completed", "in-progress"}),
    "ServiceRequest": frozenset({"active", "completed"}),
}
_DATE_FIELDS = {
    "Procedure": (("performedDateTime",), ("performedPeriod", "start"), ("performedPeriod", "end")),
    "ServiceRequest": (("occurrenceDateTime",), ("occurrencePeriod", "start"), ("authoredOn",)),
}


def _coding_in(resource: Resource, value_set_id: str, collector: Collector) -> Coding | None:
    index = code_index(value_set_id)
    return next((c for c in collector.codings_of(resource) if index.matching(c[0], c[1])), None)


def _when(resource: Resource) -> DateSpan | None:
    for path in _DATE_FIELDS.get(resource_type(resource) or "", ()):
        span = parse_fhir_date(child(resource, *path))
        if span is not None:
            return span
    return None


def surgery_findings(procedures: Sequence[Resource], collector: Collector) -> None:
    for procedure in procedures:
        if resource_type(procedure) != "Procedure" or status_of(procedure) != "completed":
            continue
        coding = _coding_in(procedure, LUMBAR_SURGERY, collector)
        if coding is not None and collector.usable(procedure, InputKind.PROCEDURES, SURGERY):
            collector.add(SURGERY[0], evidence_for(procedure, coding, _when(procedure)))


def therapy_findings(
    records: Sequence[tuple[InputKind, Resource]], episode: Episode, collector: Collector
) -> ConservativeTherapy:
    if not episode.active:
        return ConservativeTherapy(documented=False)
    onset: date | None = episode.onset
    evidence = []
    for kind, record in records:
        if status_of(record) not in THERAPY_STATUS.get(resource_type(record) or "", ()):
            continue
        coding = _coding_in(record, PHYSICAL_THERAPY, collector)
        when = _when(record) if coding is not None else None
        if when is None or (onset is not None and when.latest < onset):
            continue
        if collector.usable(record, kind, ("therapy",)):
            evidence.append(evidence_for(record, coding, when))
    return ConservativeTherapy(documented=bool(evidence), evidence=tuple(evidence))
