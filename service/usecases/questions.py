"""Red-flag questions: offered with a hook's card, answered on the questions page (or in an `/evaluate`
Bundle), and re-judged through the same route as every verdict (`judge`, the second half of `decide`).

Offering: when the decision left red flags unchecked, the card links to `/questions/{assessmentId}` with a
signed token, and the findings it was judged on are kept (codes, no record text) until answered or the
link expires. Answering: token -> the kept findings -> the QuestionnaireResponse read strictly -> judged
again with the answers as clinician-reported evidence -> the answers and both verdicts stored, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fhir_mappings.model import ClinicianAnswer, Findings
from service.errors import ApiError
from service.questions.catalog import Question
from service.questions.questionnaire import assessment_questionnaire_url
from service.questions.responses import read_response
from service.questions.smart import LAUNCH_PATH, LaunchContext
from service.questions.snapshot import findings_from_json, findings_to_json, patient_check
from service.questions.verdict import verdict_summary
from service.rules import Decision
from service.runtime import Runtime
from service.store import AnswersRecord, AnswersSource, QuestionLink
from service.usecases.decide import judge


@dataclass(frozen=True, slots=True)
class QuestionsOffer:
    card_link: dict[str, str]  # the card's `absolute` link, carrying the token
    record: QuestionLink  # stored with the assessment, in the same transaction


@dataclass(frozen=True, slots=True)
class OpenQuestions:
    """A valid link's questions, for the page or a client to show."""

    assessment_id: str
    questions: tuple[Question, ...]
    expires_at: datetime
    decision: Decision  # the verdict the card gave, re-judged from the kept findings


@dataclass(frozen=True, slots=True)
class AnsweredQuestions:
    assessment_id: str
    questions: tuple[Question, ...]  # the questions asked
    answers: tuple[ClinicianAnswer, ...]
    before: Decision
    after: Decision
    record: AnswersRecord


def _link_label(questions: Sequence[Question]) -> str:
    count = len(questions)
    names = ", ".join(question.title for question in questions[:3]) + (", ..." if count > 3 else "")
    noun = "question" if count == 1 else "questions"
    return f"Answer {count} {noun} the record could not ({names})"


def offer_questions(
    runtime: Runtime,
    decision: Decision,
    findings: Findings,
    *,
    assessment_id: str,
    fhir_server: str | None = None,
) -> QuestionsOffer | None:
    """The questions link for a hook's cards, or None when nothing relevant was left unchecked.

    A `smart` link (appContext = the assessment id) for an EHR whose FHIR server is a SMART issuer this
    service is registered with; otherwise an `absolute` link carrying a signed token."""
    if not runtime.settings.questions:
        return None
    asked = runtime.questions.asked(decision)
    if not asked or decision.urgent:
        return None  # nothing unchecked, or urgent imaging already: no answer would change the verdict
    now = runtime.clock()
    token, issued = runtime.question_signer.issue(assessment_id, now=now)
    base = runtime.settings.public_base_urls[0]
    label = _link_label(runtime.questions.select(asked))
    snapshot = findings_to_json(findings, assessment_id=assessment_id)
    snapshot["questionsVersion"] = runtime.questions.version
    smart_issuer = runtime.smart.issuer_for(fhir_server) if runtime.smart is not None else None
    if smart_issuer is not None:
        link = {"label": label, "url": f"{base}{LAUNCH_PATH}", "type": "smart", "appContext": assessment_id}
        snapshot["smartIssuer"] = smart_issuer  # only this EHR may launch it
    else:
        url = f"{base}/questions/{quote(assessment_id, safe='')}?token={token}"
        link = {"label": label, "url": url, "type": "absolute"}
    return QuestionsOffer(
        card_link=link,
        record=QuestionLink(
            assessment_id=assessment_id,
            created_at=now,
            expires_at=issued.expires_at,
            asked=asked,
            findings=snapshot,
        ),
    )


def _kept(
    runtime: Runtime, assessment_id: str, token: str | None, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The link's stored row and its kept findings, or the 4xx that says why the questions cannot be
    answered (token first: without a valid one, nothing about the assessment is revealed)."""
    runtime.question_signer.verify(token, assessment_id, now=now)
    return _open_link(runtime, assessment_id, now)


def _open_link(runtime: Runtime, assessment_id: str, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    link = runtime.store.question_link(assessment_id)
    if link is None:
        raise ApiError(404, "no-questions", "no questions were offered for this assessment", "assessmentId")
    if link["answered_at"] is not None:
        raise ApiError(
            409, "questions-already-answered", "these questions have been answered already", "assessmentId"
        )
    findings = link["findings"]
    if findings is None or link["expires_at"] <= now:
        raise ApiError(
            403,
            "questions-link-expired",
            "this questions link has expired: order again for a new one",
            "token",
        )
    if findings.get("questionsVersion") != runtime.questions.version:
        raise ApiError(
            409,
            "questionnaire-version-changed",
            "the service's rules changed since these questions were asked: order again for new ones",
            "assessmentId",
        )
    return link, findings


def launched_questions(runtime: Runtime, launch: LaunchContext) -> str:
    """A questions token for the assessment a SMART launch named (its appContext), once it is sure the
    questions were offered to that EHR and its open patient is the patient assessed; else the 4xx why."""
    now = runtime.clock()
    _, kept = _open_link(runtime, launch.assessment_id, now)
    if kept.get("smartIssuer") != launch.ehr:
        raise ApiError(
            403,
            "smart-issuer-mismatch",
            "these questions were not offered to the EHR that launched them",
            "iss",
        )
    check = kept.get("patientCheck")
    if launch.patient_id is None or check is None:
        raise ApiError(
            403,
            "smart-patient-missing",
            "the EHR did not say which patient is open, so these questions cannot be shown",
            "patient",
        )
    if patient_check(launch.assessment_id, f"Patient/{launch.patient_id}") != check:
        raise ApiError(
            403,
            "smart-patient-mismatch",
            "the patient open in the EHR is not the patient these questions are about",
            "patient",
        )
    token, _ = runtime.question_signer.issue(launch.assessment_id, now=now)
    return token


def open_questions(runtime: Runtime, assessment_id: str, token: str | None) -> OpenQuestions:
    link, kept = _kept(runtime, assessment_id, token, runtime.clock())
    _, decision = judge(runtime.rules, findings_from_json(kept))
    return OpenQuestions(
        assessment_id=assessment_id,
        questions=runtime.questions.select(link["asked"]),
        expires_at=link["expires_at"],
        decision=decision,
    )


def answer_questions(
    runtime: Runtime,
    assessment_id: str,
    token: str | None,
    response: Any,
    *,
    source: AnswersSource = AnswersSource.QUESTIONS_PAGE,
) -> AnsweredQuestions:
    """Re-judge the assessment with the answers in `response` (a QuestionnaireResponse) and keep them.
    Raises ApiError (403 token, 404, 409 answered or rules changed, 400/422 the response) and then
    nothing is stored."""
    now = runtime.clock()  # one instant for the token, the link's expiry, `authored` and the claim
    link, kept = _kept(runtime, assessment_id, token, now)
    check = kept.get("patientCheck")
    answers = read_response(
        response,
        catalog=runtime.questions,
        questionnaire_url=assessment_questionnaire_url(assessment_id),
        asked=link["asked"],
        now=now,
        is_patient=(lambda reference: patient_check(assessment_id, reference) == check) if check else None,
    )
    findings = findings_from_json(kept)
    _, before = judge(runtime.rules, findings)
    _, after = judge(runtime.rules, findings, answers)
    record = answers_record(assessment_id, answers, before, after, now, source=source)
    if not runtime.store.save_answers(record):
        raise ApiError(
            409,
            "questions-already-answered",
            "these questions have been answered already, or the link expired meanwhile",
            "assessmentId",
        )
    asked = runtime.questions.select(link["asked"])
    return AnsweredQuestions(assessment_id, asked, answers, before, after, record)


def answers_record(
    assessment_id: str,
    answers: Sequence[ClinicianAnswer],
    before: Decision,
    after: Decision,
    answered_at: datetime,
    *,
    source: AnswersSource,
) -> AnswersRecord:
    """The answers as codes only (red-flag id -> yes / no / unknown: no free text) and both verdicts."""
    return AnswersRecord(
        assessment_id=assessment_id,
        answered_at=answered_at,
        source=source,
        answers=tuple((answer.flag, answer.answer.value) for answer in answers),
        verdict_before=verdict_summary(before),
        verdict_after=verdict_summary(after),
        rules_version=after.rules_version,
    )
