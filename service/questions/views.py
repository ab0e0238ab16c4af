"""What the questions page and its JSON twin show: the verdict as the card gave it, the questions, and after
answering, the new verdict with what changed and why. Words come from the card's own wording
(`service.wording`), so the page and the card never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_mappings.answers import CLINICIAN_REPORTED
from fhir_mappings.model import Answer, ClinicianAnswer, Evidence, FlagStatus
from service.cds.cards import card_indicator
from service.questions.catalog import Question
from service.rules import Decision
from service.wording.detail import card_detail
from service.wording.summary import card_summary


def order_verdicts(decision: Decision) -> list[dict[str, Any]]:
    return [
        {
            "order": judgement.order.reference,
            "procedure": judgement.order.procedure,
            "summary": card_summary(decision, judgement),
            "detail": card_detail(decision, judgement),
            "indicator": card_indicator(decision, judgement),
            "appropriateness": judgement.appropriateness.value,
            **({"pamaRating": judgement.pama_rating.value} if judgement.rating_withheld is None else {}),
        }
        for judgement in decision.orders
    ]


def question_view(question: Question) -> dict[str, Any]:
    return {"redFlag": question.flag, "title": question.title, "text": question.text, "why": question.why}


def _effect(before: Decision, answer: ClinicianAnswer) -> str:
    status = (
        before.findings.red_flags[answer.flag].status if answer.flag in before.findings.red_flags else None
    )
    if answer.answer is Answer.UNKNOWN:
        return "still could not be checked"
    if status is FlagStatus.PRESENT:
        return "already in the record: the record's evidence stands"
    if answer.answer is Answer.YES:
        return f"red flag added ({CLINICIAN_REPORTED})"
    if status is FlagStatus.UNKNOWN:
        return f"settled: no red flag ({CLINICIAN_REPORTED})"
    return "not in the record either"


def _why(decision: Decision) -> list[str]:
    """The variants and the red flags that made them, with each flag's source."""
    rules = decision.rules
    lines = []
    for match in decision.variants:
        triggers = ", ".join(rules.term_title(term) for term in match.triggered_by)
        lines.append(f"{match.id}, {match.variant.title}" + (f": {triggers}" if triggers else ""))
    if decision.urgent:
        flags = " and ".join(rules.flag_title(flag) for flag in decision.urgent_flags)
        lines.insert(0, f"Urgent imaging: {flags}")
    return lines


def _reported(item: Evidence) -> bool:
    return (item.detail or "").startswith(CLINICIAN_REPORTED)


def _evidence_text(item: Evidence) -> str:
    if _reported(item):  # "answered at <when>: “<question>” yes"
        return f"answered at {item.date}: {(item.detail or '').removeprefix(CLINICIAN_REPORTED + ': ')}"
    return " ".join(part for part in (item.reference, item.date or "", item.detail or "") if part)


def _evidence(decision: Decision) -> list[dict[str, str]]:
    rules = decision.rules
    return [
        {
            "redFlag": flag.id,
            "title": rules.flag_title(flag.id),
            "source": CLINICIAN_REPORTED if any(_reported(item) for item in flag.evidence) else "record",
            "evidence": "; ".join(_evidence_text(item) for item in flag.evidence),
        }
        for flag in decision.red_flags
    ]


def answered_view(
    questions: Sequence[Question],
    answers: Sequence[ClinicianAnswer],
    before: Decision,
    after: Decision,
    *,
    assessment_id: str,
    changed: bool,
) -> dict[str, Any]:
    """Before and after, what each answer did, why the new verdict, and what is still unchecked."""
    by_flag = {answer.flag: answer for answer in answers}
    rules = after.rules
    return {
        "assessmentId": assessment_id,
        "changed": changed,
        "before": order_verdicts(before),
        "after": order_verdicts(after),
        "answers": [
            {
                "redFlag": question.flag,
                "title": question.title,
                "question": question.text,
                "answer": by_flag[question.flag].answer.value if question.flag in by_flag else "unknown",
                "effect": _effect(before, by_flag[question.flag])
                if question.flag in by_flag
                else "not answered: still could not be checked",
            }
            for question in questions
        ],
        "why": _why(after),
        "redFlags": _evidence(after),
        "stillUnchecked": [
            {"redFlag": flag.id, "title": rules.flag_title(flag.id)} for flag in after.unchecked_flags
        ],
        "rulesVersion": after.rules_version,
    }
