"""The questions room: answer the red-flag questions a card offered, and see the order judged again.

Not behind the CDS client JWT: the card's link carries a signed token for that one assessment, which is
all it opens (`service.questions.tokens`). Pages are plain HTML forms (no JavaScript, nothing from a CDN),
never cached, sent with no referrer so the token cannot leak to another site.

- `GET /questionnaires/lbp-red-flags`: every red-flag question, as a FHIR R4 Questionnaire
- `GET /questions/<assessmentId>?token=`: the page with only the questions the record could not answer
- `GET /questions/<assessmentId>/questionnaire?token=`: those questions as a FHIR Questionnaire
- `POST /questions/<assessmentId>`: the page's form (HTML answer), or a FHIR QuestionnaireResponse
  (`application/fhir+json`, token in `?token=` or `Authorization: Bearer`; JSON answer)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue

from service.errors import ApiError, bad_request
from service.http.body import read_json_body
from service.http.context import runtime
from service.http.request_log import annotate
from service.questions.questionnaire import (
    ANSWER_OPTIONS,
    assessment_questionnaire_url,
    questionnaire,
)
from service.questions.views import answered_view, order_verdicts, question_view
from service.usecases import AnsweredQuestions, answer_questions, open_questions

ROOM = Path(__file__).resolve().parents[1] / "questions"
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_FHIR_JSON = "application/fhir+json"
_FORM_VALUES = {option["display"].lower(): option for option in ANSWER_OPTIONS}

blueprint = Blueprint("questions", __name__, template_folder=str(ROOM / "templates"))


@blueprint.after_request
def page_headers(response: Response) -> Response:
    """No caching, no referrer (the URL carries a token), a strict CSP on pages."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = _CSP
    return response


def _fhir(resource: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(resource)
    response.status_code = status
    response.mimetype = _FHIR_JSON
    return response


def page(template: str, http_status: int = 200, **values: Any) -> Response:
    html = render_template(template, rules_version=runtime().rules.version, **values)
    return Response(html, status=http_status, mimetype="text/html")


def error_page(error: ApiError) -> Response:
    annotate(outcome="questions-refused", error=error.code)
    return page("error.html", error.status, status=error.status, code=error.code, message=error.message)


def _query_token() -> str | None:
    return request.args.get("token")


def _bearer_or_query_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return _query_token()


def _utc_minutes(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@blueprint.get("/questions/static/<path:filename>")
def static_file(filename: str) -> ResponseReturnValue:
    return send_from_directory(ROOM / "static", filename, max_age=3600)


@blueprint.get("/questionnaires/lbp-red-flags")
def whole_questionnaire() -> ResponseReturnValue:
    return _fhir(questionnaire(runtime().questions))


@blueprint.get("/questions/<assessment_id>")
def questions_page(assessment_id: str) -> ResponseReturnValue:
    annotate(assessmentId=assessment_id)
    token = _query_token()
    try:
        opened = open_questions(runtime(), assessment_id, token)
    except ApiError as error:
        return error_page(error)
    annotate(outcome="questions-shown", asked=[question.flag for question in opened.questions])
    return page(
        "questions.html",
        before=order_verdicts(opened.decision),
        questions=[question_view(question) for question in opened.questions],
        options=[(option["display"].lower(), option["display"]) for option in ANSWER_OPTIONS],
        token=token,
        action=url_for("questions.submit_answers", assessment_id=assessment_id),
        expires_at=_utc_minutes(opened.expires_at),
    )


@blueprint.get("/questions/<assessment_id>/questionnaire")
def assessment_questionnaire(assessment_id: str) -> ResponseReturnValue:
    annotate(assessmentId=assessment_id)
    context = runtime()
    opened = open_questions(context, assessment_id, _bearer_or_query_token())
    asked = [question.flag for question in opened.questions]
    return _fhir(questionnaire(context.questions, asked, assessment_id=assessment_id))


def _response_from_form(assessment_id: str) -> tuple[str | None, dict[str, Any]]:
    """The page's form as a QuestionnaireResponse: one item per answered radio group."""
    context = runtime()
    items = []
    for name in request.form:
        if name == "token":
            continue
        value = request.form.get(name, "")
        option = _FORM_VALUES.get(value)
        if option is None:
            raise bad_request(f"the answer to {name[:60]!r} must be yes, no or unknown", name[:60])
        items.append({"linkId": name, "answer": [{"valueCoding": dict(option)}]})
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{assessment_questionnaire_url(assessment_id)}|{context.questions.version}",
        "status": "completed",
        "authored": context.clock().isoformat(timespec="seconds"),
        "item": items,
    }
    return request.form.get("token"), response


@blueprint.post("/questions/<assessment_id>")
def submit_answers(assessment_id: str) -> ResponseReturnValue:
    annotate(assessmentId=assessment_id)
    context = runtime()
    if request.mimetype == "application/x-www-form-urlencoded":
        try:
            token, response = _response_from_form(assessment_id)
            answered = answer_questions(context, assessment_id, token, response)
        except ApiError as error:
            return error_page(error)
        view = _view(answered)
        annotate(outcome="questions-answered", changed=answered.record.changed)
        return page("answered.html", view=view, pairs=list(zip(view["before"], view["after"], strict=True)))
    body = read_json_body(request, context.settings)
    answered = answer_questions(context, assessment_id, _bearer_or_query_token(), body)
    annotate(outcome="questions-answered", changed=answered.record.changed)
    return jsonify(_view(answered))


def _view(answered: AnsweredQuestions) -> dict[str, Any]:
    return answered_view(
        answered.questions,
        answered.answers,
        answered.before,
        answered.after,
        assessment_id=answered.assessment_id,
        changed=answered.record.changed,
    )
