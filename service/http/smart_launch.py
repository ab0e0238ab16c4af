"""SMART App Launch of the questions page (`service.questions.smart`), for a card's `type: smart` link.

- `GET /questions/smart/launch?iss=&launch=`: the EHR opens this; the browser goes on to the EHR's
  authorization endpoint, with the launch's state in a signed HttpOnly cookie
- `GET /questions/smart/callback?code=&state=`: the EHR sends the browser back; the code is exchanged,
  the token response's appContext and patient checked, and the browser sent on (303) to the questions page
  with a questions token, as the `absolute` link would have opened it

Errors are HTML pages (a browser is on the other end) with the status and code the JSON API would give.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from service.errors import ApiError
from service.http.context import runtime
from service.http.questions import error_page, page_headers
from service.http.request_log import annotate
from service.questions.smart import CALLBACK_PATH, LAUNCH_LIFETIME, SmartLauncher, cookie_name
from service.usecases import launched_questions

blueprint = Blueprint("smart_launch", __name__)
blueprint.after_request(page_headers)


def _launcher() -> SmartLauncher:
    launcher = runtime().smart
    if launcher is None:
        raise ApiError(
            404,
            "smart-launch-off",
            "SMART launch is not configured on this service (CDS_SMART_CLIENT_ID)",
            None,
        )
    return launcher


def _cookie_attributes() -> dict[str, Any]:
    """Set and cleared alike (a browser ignores a clearing cookie whose attributes differ). Lax: the
    callback is a top-level navigation back from the EHR; the pages refuse framing, so no SameSite=None."""
    secure = runtime().settings.public_base_urls[0].startswith("https://")
    return {"path": CALLBACK_PATH, "secure": secure, "httponly": True, "samesite": "Lax"}


@blueprint.get("/questions/smart/launch")
def launch() -> ResponseReturnValue:
    try:
        redirect_to = _launcher().begin(
            request.args.get("iss"), request.args.get("launch"), now=runtime().clock()
        )
    except ApiError as error:
        return error_page(error)
    annotate(outcome="smart-launch-authorize")
    response = redirect(redirect_to.authorize_url, 302)
    response.set_cookie(
        redirect_to.cookie_name,
        redirect_to.cookie_value,
        max_age=int(LAUNCH_LIFETIME.total_seconds()),
        **_cookie_attributes(),
    )
    return response


@blueprint.get("/questions/smart/callback")
def callback() -> ResponseReturnValue:
    state = request.args.get("state")
    context = runtime()
    try:
        launched = _launcher().finish(
            state=state,
            code=request.args.get("code"),
            error=request.args.get("error"),
            response_iss=request.args.get("iss"),
            cookies=request.cookies,
            now=context.clock(),
        )
        annotate(assessmentId=launched.assessment_id)
        token = launched_questions(context, launched)
    except ApiError as error:
        response: Response = error_page(error)
    else:
        annotate(outcome="smart-launch-opened")
        target = url_for("questions.questions_page", assessment_id=launched.assessment_id, token=token)
        response = redirect(target, 303)
    if state and cookie_name(state) in request.cookies:
        _forget(response, cookie_name(state))
    return response


def _forget(response: Response, name: str) -> None:
    """The launch's cookie is good for one callback, whatever its outcome."""
    response.delete_cookie(name, **_cookie_attributes())
