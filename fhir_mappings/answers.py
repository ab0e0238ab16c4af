"""A clinician's answers to red-flag questions, as evidence: the findings with the answers applied.

An answer is evidence of source "clinician-reported" (the QuestionnaireResponse, the question, when), so a
re-judged verdict stays explainable. The rule is one-way, for safety:
- a flag the record shows present stays present, whatever is answered (a recorded cancer history stays);
- `yes` makes a flag that was unchecked or not found in the record present;
- `no` makes an unchecked flag absent (a flag not found in the record stays absent);
- `unknown` changes nothing: the flag stays unchecked, and its "could not be checked" line stays.
A data gap whose red flags have all been answered no longer leaves anything unchecked and is dropped;
one with some left names only those (`DataGap.answered` says which were answered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from fhir_mappings.model import (
    RED_FLAG_IDS,
    Answer,
    ClinicianAnswer,
    DataGap,
    Evidence,
    Findings,
    FlagStatus,
    RedFlag,
)

CLINICIAN_REPORTED = "clinician-reported"


def answer_evidence(answer: ClinicianAnswer) -> Evidence:
    """The answer as evidence: which response, which question (its linkId, in the questionnaire), when."""
    return Evidence(
        reference=answer.reference,
        system=answer.questionnaire,
        code=answer.flag,
        date=answer.authored,
        detail=f"{CLINICIAN_REPORTED}: “{answer.question}” {answer.answer.value}",
    )


def _answered(flag: RedFlag, answer: ClinicianAnswer) -> RedFlag:
    if flag.status is FlagStatus.PRESENT or answer.answer is Answer.UNKNOWN:
        return flag  # the record's finding stands; an unknown changes nothing
    if answer.answer is Answer.YES:
        return RedFlag(flag.id, FlagStatus.PRESENT, evidence=(answer_evidence(answer),))
    if flag.status is FlagStatus.UNKNOWN:
        return RedFlag(flag.id, FlagStatus.ABSENT, evidence=(answer_evidence(answer),))
    return flag  # absent in the record, and denied: nothing to add


def _narrowed(gap: DataGap, settled: set[str]) -> DataGap | None:
    answered = tuple(item for item in gap.affects if item in settled)
    if not answered:
        return gap
    remaining = tuple(item for item in gap.affects if item not in settled)
    if not remaining:
        return None
    return replace(gap, affects=remaining, answered=gap.answered + answered)


def apply_answers(findings: Findings, answers: Iterable[ClinicianAnswer]) -> Findings:
    """The findings with the clinician's answers as evidence (see the module's rules). Pure."""
    by_flag: Mapping[str, ClinicianAnswer] = {a.flag: a for a in answers if a.flag in findings.red_flags}
    if not by_flag:
        return findings
    flags = {
        flag_id: _answered(flag, by_flag[flag_id]) if flag_id in by_flag else flag
        for flag_id, flag in findings.red_flags.items()
    }
    # Settled: no longer unchecked because of an answer (a yes or a no, not an unknown).
    settled = {
        flag_id
        for flag_id in RED_FLAG_IDS
        if flag_id in by_flag
        and findings.red_flags[flag_id].status is FlagStatus.UNKNOWN
        and flags[flag_id].status is not FlagStatus.UNKNOWN
    }
    gaps = tuple(narrowed for gap in findings.data_gaps if (narrowed := _narrowed(gap, settled)) is not None)
    return replace(findings, red_flags=flags, data_gaps=gaps)
