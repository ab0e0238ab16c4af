"""The questions as a FHIR R4 Questionnaire: for the whole rules set, or for one assessment (only what it
could not check). linkIds are red-flag ids; answers are Yes / No / Unknown (LOINC answer codes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.questions.catalog import Question, QuestionCatalog

CANONICAL_BASE = "https://lbp-imaging-cds.org/fhir/Questionnaire"
WHOLE_SET_ID = "lbp-red-flags"
WHOLE_SET_URL = f"{CANONICAL_BASE}/{WHOLE_SET_ID}"
RED_FLAG_SYSTEM = "https://lbp-imaging-cds.org/CodeSystem/red-flag"
CITATION_EXTENSION = "http://hl7.org/fhir/StructureDefinition/cqf-citation"
LOINC = "http://loinc.org"
# LOINC answer list LL361-7 (Y/N/unknown): the codes real questionnaires use for yes / no / unknown.
YES = {"system": LOINC, "code": "LA33-6", "display": "Yes"}
NO = {"system": LOINC, "code": "LA32-8", "display": "No"}
UNKNOWN = {"system": LOINC, "code": "LA4489-6", "display": "Unknown"}
ANSWER_OPTIONS = (YES, NO, UNKNOWN)


def assessment_questionnaire_id(assessment_id: str) -> str:
    return f"{WHOLE_SET_ID}-{assessment_id}"


def assessment_questionnaire_url(assessment_id: str) -> str:
    return f"{CANONICAL_BASE}/{assessment_questionnaire_id(assessment_id)}"


def _item(question: Question, number: int) -> dict[str, Any]:
    return {
        "linkId": question.flag,
        "code": [{"system": RED_FLAG_SYSTEM, "code": question.flag, "display": question.title}],
        "prefix": f"{number}.",
        "text": question.text,
        "type": "choice",
        "required": False,  # "unknown" or no answer leaves the flag unchecked, never absent
        "answerOption": [{"valueCoding": dict(option)} for option in ANSWER_OPTIONS],
        "extension": [{"url": CITATION_EXTENSION, "valueString": ref} for ref in question.citations],
        "item": [{"linkId": f"{question.flag}.why", "type": "display", "text": question.why}],
    }


def questionnaire(
    catalog: QuestionCatalog, flags: Sequence[str] | None = None, *, assessment_id: str | None = None
) -> dict[str, Any]:
    """The Questionnaire for `flags` (None: every red flag) as FHIR R4 JSON.

    With `assessment_id`, the assessment's own: its url names the assessment and `derivedFrom` the whole
    set, so a response can only be given for the assessment it was asked for."""
    questions = catalog.select(flags) if flags is not None else tuple(catalog.questions.values())
    references = dict.fromkeys(ref for question in questions for ref in question.citations)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": assessment_questionnaire_id(assessment_id) if assessment_id else WHOLE_SET_ID,
        "extension": [{"url": CITATION_EXTENSION, "valueString": ref} for ref in references],
        "url": assessment_questionnaire_url(assessment_id) if assessment_id else WHOLE_SET_URL,
        "version": catalog.version,
        "name": "LowBackPainImagingRedFlags",
        "title": "Low back pain imaging: red flags the record could not show",
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "lbp-imaging-cds",
        "description": (
            "Yes/no questions for the red flags of the ACR Appropriateness Criteria for low back pain (2021) "
            f"and the ACP red-flag advice (rules version {catalog.rules_version}). An answer is "
            "clinician-reported evidence: a yes adds a red flag, a no settles one the record could not "
            "check, an unknown leaves it unchecked; no answer removes a red flag found in the record."
        ),
        "item": [_item(question, number) for number, question in enumerate(questions, start=1)],
    }
    if assessment_id:
        resource["derivedFrom"] = [f"{WHOLE_SET_URL}|{catalog.version}"]
    return resource
