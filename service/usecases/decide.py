"""The one route from a patient's record to a decision: mappings -> findings -> rules -> decision.

Every use case (a hook call, `/evaluate`, the Bulk audit, the questionnaire's re-judgement) judges through
`decide`, so none of them can drift into a rule of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from fhir_mappings import findings as map_findings
from fhir_mappings.model import DataQualityNote, Findings, ImagingOrder, InputKind, PatientRecord
from service.rules import Decision, Rules, assess
from service.wording.fetch_reasons import explain_gaps


def decide(
    rules: Rules,
    record: PatientRecord,
    orders: Sequence[ImagingOrder],
    as_of: date,
    *,
    quality_notes: Iterable[DataQualityNote] = (),
    why_missing: Mapping[InputKind, Sequence[str]] | None = None,
) -> tuple[Findings, Decision]:
    """Map the record and judge the orders as of `as_of`. `why_missing` says, per input, why it was missing
    or partial (the FHIR fetch's reasons, in a clinician's words)."""
    findings = map_findings(record, orders, as_of)
    notes = tuple(quality_notes)
    if notes or why_missing:
        findings = replace(
            findings,
            data_quality=findings.data_quality + notes,
            data_gaps=explain_gaps(findings.data_gaps, {k: list(v) for k, v in (why_missing or {}).items()}),
        )
    return findings, assess(findings, rules)
