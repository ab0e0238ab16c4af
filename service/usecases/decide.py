"""The one route from a patient's record to a decision: mappings -> findings -> rules -> decision.

Every use case (a hook call, `/evaluate`, the Bulk audit, the questionnaire's re-judgement) judges through
here, so none of them can drift into a rule of its own. `decide` maps a record; `judge` is its second
half, for findings already mapped (the questionnaire re-judges the findings kept from the hook call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from fhir_mappings import apply_answers
from fhir_mappings import findings as map_findings
from fhir_mappings.model import (
    ClinicianAnswer,
    DataQualityNote,
    Findings,
    ImagingOrder,
    InputKind,
    PatientRecord,
)
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
    answers: Sequence[ClinicianAnswer] = (),
) -> tuple[Findings, Decision]:
    """Map the record and judge the orders as of `as_of`. `why_missing` says, per input, why it was missing
    or partial (the FHIR fetch's reasons, in a clinician's words); `answers` are a clinician's answers to
    red-flag questions, applied as evidence (`fhir_mappings.apply_answers`)."""
    findings = map_findings(record, orders, as_of)
    notes = tuple(quality_notes)
    if notes or why_missing:
        findings = replace(
            findings,
            data_quality=findings.data_quality + notes,
            data_gaps=explain_gaps(findings.data_gaps, {k: list(v) for k, v in (why_missing or {}).items()}),
        )
    return judge(rules, findings, answers)


def judge(
    rules: Rules, findings: Findings, answers: Sequence[ClinicianAnswer] = ()
) -> tuple[Findings, Decision]:
    """Judge mapped findings, with a clinician's answers applied first when there are any."""
    if answers:
        findings = apply_answers(findings, answers)
    return findings, assess(findings, rules)
