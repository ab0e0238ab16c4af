"""From a patient's record to a decision, and the audit record of it. Pure but for the store write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from fhir_mappings import findings as map_findings
from fhir_mappings.model import DataGap, DataQualityNote, Findings, ImagingOrder, PatientRecord
from service.rules import Decision, Rules, assess
from service.runtime import Runtime


def assess_record(
    rules: Rules,
    record: PatientRecord,
    orders: Sequence[ImagingOrder],
    as_of: date,
    *,
    quality_notes: Iterable[DataQualityNote],
    extra_gaps: Iterable[DataGap],
) -> tuple[Findings, Decision]:
    findings = map_findings(record, orders, as_of)
    notes, gaps = tuple(quality_notes), tuple(extra_gaps)
    if notes or gaps:
        findings = replace(
            findings, data_quality=findings.data_quality + notes, data_gaps=findings.data_gaps + gaps
        )
    return findings, assess(findings, rules)


def save_assessment(
    runtime_: Runtime,
    decision: Decision,
    *,
    assessment_id: str,
    service_id: str,
    hook_instance: str | None,
    client_iss: str | None,
    patient_reference: str | None,
    card_ids: Mapping[str, object] | None,
    started: float,
) -> None:
    """Written before the response is sent: what was advised, on what evidence, under which rules."""
    raise NotImplementedError  # wired once the store's record types land
