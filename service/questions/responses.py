"""A QuestionnaireResponse read strictly into a clinician's answers: only questions that were asked, only
the Yes / No / Unknown codings offered, for the Questionnaire that asked them. Anything else is a 4xx
naming the element, and nothing is stored.

A yes to a red flag implies the weaker ones it contains (age over 70 -> over 50) and a no to a weaker one
denies the stronger (not over 50 -> not over 70); answers that contradict each other are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fhir_mappings.model import Answer, ClinicianAnswer
from service.errors import ApiError, bad_request
from service.questions.catalog import QuestionCatalog
from service.questions.questionnaire import ANSWER_OPTIONS, NO, UNKNOWN, YES

_CODES = {(YES["system"], YES["code"]): Answer.YES, (NO["system"], NO["code"]): Answer.NO}
_CODES[(UNKNOWN["system"], UNKNOWN["code"])] = Answer.UNKNOWN
_OFFERED = ", ".join(
    f"{option['display']} ({option['system']}|{option['code']})" for option in ANSWER_OPTIONS
)
# FHIR dateTime with a time zone (a point in time), as `authored` must be when given.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_STATUSES = ("completed", "amended")


def _fail(message: str, location: str) -> ApiError:
    return bad_request(message, location)


def _questionnaire(resource: Mapping[str, Any], url: str, version: str, where: str) -> None:
    raw = resource.get("questionnaire")
    if not isinstance(raw, str):
        raise _fail(f"questionnaire must name the Questionnaire that asked: {url}", f"{where}.questionnaire")
    canonical, _, asked_version = raw.partition("|")
    if canonical != url:
        raise ApiError(
            422,
            "wrong-questionnaire",
            f"these answers are for another Questionnaire ({raw[:120]!r}); the questions were asked by {url}",
            f"{where}.questionnaire",
        )
    if asked_version and asked_version != version:
        raise ApiError(
            409,
            "questionnaire-version-changed",
            f"these answers are for version {asked_version[:40]!r} of the questions; the service asks "
            f"version {version!r} (its rules changed): fetch the Questionnaire again",
            f"{where}.questionnaire",
        )


def _answer(item: Mapping[str, Any], where: str) -> Answer:
    answers = item.get("answer")
    if answers is None or answers == []:
        return Answer.UNKNOWN  # skipped
    if not isinstance(answers, list) or len(answers) != 1:
        raise _fail("one answer per question: Yes, No or Unknown", f"{where}.answer")
    answer = answers[0]
    coding = answer.get("valueCoding") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or set(answer) != {"valueCoding"} or not isinstance(coding, dict):
        raise _fail(f"the answer must be a valueCoding, one of {_OFFERED}", f"{where}.answer[0]")
    value = _CODES.get((coding.get("system"), coding.get("code")))  # type: ignore[arg-type]
    if value is None:
        raise _fail(f"the answer must be one of {_OFFERED}", f"{where}.answer[0].valueCoding")
    return value


def _with_implications(
    answers: dict[str, Answer], implied: Mapping[str, tuple[str, ...]], where: str
) -> dict[str, Answer]:
    result = dict(answers)
    for stronger, weaker_flags in implied.items():
        for weaker in weaker_flags:
            strong, weak = answers.get(stronger), answers.get(weaker)
            if strong is Answer.YES and weak is Answer.NO:
                raise _fail(f"{stronger} answered yes but {weaker} answered no: they contradict", where)
            if strong is Answer.YES and weak in (None, Answer.UNKNOWN):
                result[weaker] = Answer.YES
            if weak is Answer.NO and strong in (None, Answer.UNKNOWN):
                result[stronger] = Answer.NO
    return result


def read_response(
    resource: Any,
    *,
    catalog: QuestionCatalog,
    questionnaire_url: str,
    asked: Sequence[str],
    now: datetime,
    is_patient: Callable[[str], bool] | None,
    where: str = "QuestionnaireResponse",
) -> tuple[ClinicianAnswer, ...]:
    """The answers in `resource`, checked against the questions `asked` by `questionnaire_url`; a
    `subject` must be the patient assessed (`is_patient`)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        raise _fail("the answers must be a FHIR QuestionnaireResponse", f"{where}.resourceType")
    _questionnaire(resource, questionnaire_url, catalog.version, where)
    if resource.get("status") not in _STATUSES:
        raise _fail(f"status must be one of {', '.join(_STATUSES)}", f"{where}.status")
    authored = resource.get("authored")
    if authored is None:
        authored = now.isoformat(timespec="seconds")
    elif not isinstance(authored, str) or not _DATETIME.match(authored):
        raise _fail("authored must be a FHIR dateTime with a time zone", f"{where}.authored")
    subject = resource.get("subject")
    if subject is not None:
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(reference, str):
            raise _fail("subject must be a Reference to the Patient", f"{where}.subject")
        if is_patient is not None and not is_patient(reference):
            raise ApiError(
                422, "wrong-patient", "subject is another patient than the one assessed", f"{where}.subject"
            )
    resource_id = resource.get("id")
    if resource_id is not None and (not isinstance(resource_id, str) or not _ID.match(resource_id)):
        raise _fail("id must be a FHIR id", f"{where}.id")
    items = resource.get("item", [])
    if not isinstance(items, list):
        raise _fail("item must be a list of answered questions", f"{where}.item")
    allowed = set(asked)
    given: dict[str, Answer] = {}
    for index, item in enumerate(items):
        at = f"{where}.item[{index}]"
        link_id = item.get("linkId") if isinstance(item, dict) else None
        if not isinstance(link_id, str):
            raise _fail("each item needs a linkId", f"{at}.linkId")
        if link_id not in allowed:
            raise _fail(f"question {link_id[:60]!r} was not asked: the questions were {', '.join(asked)}", at)
        if link_id in given:
            raise _fail(f"question {link_id!r} is answered twice", at)
        if set(item) - {"linkId", "text", "answer", "definition"}:
            raise _fail("an item holds linkId, text and one answer", at)
        given[link_id] = _answer(item, at)
    settled = _with_implications(given, catalog.implied, f"{where}.item")
    reference = f"QuestionnaireResponse/{resource_id}" if resource_id else "QuestionnaireResponse"
    return tuple(
        ClinicianAnswer(
            flag=flag,
            answer=settled[flag],
            reference=reference,
            questionnaire=questionnaire_url,
            question=question.text,
            authored=authored,
        )
        for flag, question in catalog.questions.items()
        if flag in settled
    )
