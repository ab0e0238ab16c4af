"""SMART App Launch of the questions page, over HTTP: the Flask app as the SMART app, a real authorization
server on loopback as the EHR (`tests.support.smart_ehr`), the browser's hops played with the test client
(our side) and requests (the EHR's side). Every refusal is a page with the JSON API's status and code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from flask.testing import FlaskClient

from service.app import create_app
from service.config import ConfigError
from service.questions.smart import code_challenge
from tests.questions.conftest import ADMIN_TOKEN, sign_order, stored
from tests.support.smart_ehr import SmartEhr

NO_VITALS = "demo-no-observations"
CLIENT_ID = "lbp-questions"
REDIRECT_URI = "http://localhost/questions/smart/callback"


@pytest.fixture
def ehr() -> Iterator[SmartEhr]:
    with SmartEhr(client_id=CLIENT_ID, redirect_uri=REDIRECT_URI) as server:
        yield server


@pytest.fixture
def smart(make_client: Callable[..., FlaskClient], ehr: SmartEhr) -> FlaskClient:
    return make_client(
        demo=True,
        admin_token=ADMIN_TOKEN,
        questions_key="k" * 32,
        smart_client_id=CLIENT_ID,
        smart_issuers=(ehr.base_url + "/",),  # normalised: a trailing slash is the same issuer
    )


def _smart_link(answer: dict[str, Any]) -> dict[str, str]:
    (card,) = answer["cards"]
    (link,) = [link for link in card["links"] if "/questions/" in link["url"]]
    return link  # type: ignore[no-any-return]


def _signed_with_smart_link(client: FlaskClient, ehr: SmartEhr) -> dict[str, str]:
    return _smart_link(sign_order(client, NO_VITALS, drop=("observations",), fhir_server=ehr.base_url))


def _launch(client: FlaskClient, ehr: SmartEhr, launch_id: str) -> Any:
    return client.get(f"/questions/smart/launch?iss={quote(ehr.base_url, safe='')}&launch={launch_id}")


def _at_the_ehr(location: str) -> str:
    """The browser at the EHR's authorization endpoint: where it is sent back to."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(REDIRECT_URI + "?")
    return back.removeprefix("http://localhost")


def _launched(
    client: FlaskClient, ehr: SmartEhr, *, patient: str | None = NO_VITALS, app_context: str | None = None
) -> tuple[str, Any]:
    """Sign an order, launch the card's smart link as the EHR would, come back: (assessment id, callback)."""
    link = _signed_with_smart_link(client, ehr)
    context = link["appContext"] if app_context is None else app_context
    started = _launch(client, ehr, ehr.launch(patient=patient, app_context=context))
    assert started.status_code == 302, started.get_data(as_text=True)
    return link["appContext"], client.get(_at_the_ehr(started.headers["Location"]))


def _refused_page(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert code in response.get_data(as_text=True)


def test_an_ehr_that_is_a_smart_issuer_gets_a_smart_link_with_the_assessment_as_app_context(
    smart: FlaskClient, ehr: SmartEhr
):
    link = _signed_with_smart_link(smart, ehr)

    assert link["type"] == "smart"
    assert link["url"] == "http://localhost/questions/smart/launch"  # no token, nothing about the patient
    assert sorted(stored(smart, link["appContext"])["questions"]["asked"]) == [
        "fever",
        "unexplained-weight-loss",
    ]
    assert ehr.received == []  # offering the link talks to nobody


def test_other_ehrs_and_a_service_without_smart_get_the_absolute_link(
    smart: FlaskClient, make_client: Callable[..., FlaskClient], ehr: SmartEhr, tmp_path
):
    demo = make_client(demo=True, questions_key="k" * 32, database_url=f"sqlite:///{tmp_path / 'off.db'}")
    other = _smart_link(
        sign_order(smart, NO_VITALS, drop=("observations",), fhir_server="https://other.example/fhir")
    )
    without_server = _smart_link(sign_order(smart, NO_VITALS, drop=("observations",)))
    smart_off = _smart_link(sign_order(demo, NO_VITALS, drop=("observations",), fhir_server=ehr.base_url))

    for link in (other, without_server, smart_off):
        assert link["type"] == "absolute"
        assert "appContext" not in link
        assert "?token=" in link["url"]


def test_a_launch_opens_the_questions_page_and_the_answers_rejudge_the_order(
    smart: FlaskClient, ehr: SmartEhr
):
    assessment_id, callback = _launched(smart, ehr)

    assert callback.status_code == 303, callback.get_data(as_text=True)
    target = urlsplit(callback.headers["Location"])
    assert target.path == f"/questions/{assessment_id}"
    token = parse_qs(target.query)["token"][0]
    page = smart.get(f"{target.path}?{target.query}")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count("<fieldset") == 2
    answered = smart.post(
        f"/questions/{assessment_id}", data={"token": token, "fever": "yes", "unexplained-weight-loss": "no"}
    )
    assert answered.status_code == 200
    assert "The answers changed the verdict" in answered.get_data(as_text=True)
    record = stored(smart, assessment_id)["answers"]
    assert record["verdictBefore"]["variants"] == ["V1"]
    assert record["verdictAfter"]["variants"] == ["V7"]


def test_the_ehr_sees_a_proper_ehr_launch_with_pkce(smart: FlaskClient, ehr: SmartEhr):
    link = _signed_with_smart_link(smart, ehr)
    launch_id = ehr.launch(patient=NO_VITALS, app_context=link["appContext"])
    started = _launch(smart, ehr, launch_id)

    assert started.status_code == 302
    authorize = urlsplit(started.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{ehr.origin}/auth/authorize"
    asked = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == REDIRECT_URI
    assert asked["launch"] == launch_id
    assert asked["scope"] == "launch"
    assert asked["aud"] == ehr.base_url
    assert asked["code_challenge_method"] == "S256"
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith(f"lbp_smart_{asked['state']}=")
    assert "HttpOnly" in cookie
    assert "Path=/questions/smart/callback" in cookie
    assert "SameSite=Lax" in cookie  # plain-http base URL; behind https it is SameSite=None; Secure
    assert launch_id not in cookie

    callback = smart.get(_at_the_ehr(started.headers["Location"]))
    assert callback.status_code == 303
    (token_call,) = [r for r in ehr.received if r.path == "/auth/token"]
    assert token_call.method == "POST"
    assert token_call.params["grant_type"] == "authorization_code"
    assert token_call.params["client_id"] == CLIENT_ID  # a public client names itself
    assert code_challenge(token_call.params["code_verifier"]) == asked["code_challenge"]
    assert "authorization" not in token_call.headers
    assert "Max-Age=0" in callback.headers["Set-Cookie"]  # the launch's cookie is spent
    assert ehr.paths() == ["/fhir/.well-known/smart-configuration", "/auth/authorize", "/auth/token"]


def test_the_callback_cannot_be_replayed(smart: FlaskClient, ehr: SmartEhr):
    link = _signed_with_smart_link(smart, ehr)
    started = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    back = _at_the_ehr(started.headers["Location"])
    assert smart.get(back).status_code == 303

    _refused_page(smart.get(back), 400, "smart-state-unknown")  # the cookie went with the first callback


def test_the_configuration_is_read_once_per_issuer(smart: FlaskClient, ehr: SmartEhr):
    for _ in range(2):
        _launched(smart, ehr)
    assert ehr.paths().count("/fhir/.well-known/smart-configuration") == 1


def test_a_confidential_client_authenticates_with_basic(make_client: Callable[..., FlaskClient]):
    with SmartEhr(client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, client_secret="s3cret-value") as ehr:
        client = make_client(
            demo=True,
            admin_token=ADMIN_TOKEN,
            questions_key="k" * 32,
            smart_client_id=CLIENT_ID,
            smart_client_secret="s3cret-value",
            smart_issuers=(ehr.base_url,),
        )
        _, callback = _launched(client, ehr)
        assert callback.status_code == 303, callback.get_data(as_text=True)
        (token_call,) = [r for r in ehr.received if r.path == "/auth/token"]
        assert token_call.headers["authorization"].startswith("Basic ")
        assert "client_id" not in token_call.params


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        pytest.param("launch=abc", 400, "smart-iss-missing", id="no-iss"),
        pytest.param("iss={iss}", 400, "smart-launch-missing", id="no-launch"),
        pytest.param(
            "iss=https%3A%2F%2Fevil.example%2Ffhir&launch=abc", 403, "smart-iss-not-trusted", id="other-iss"
        ),
        pytest.param("iss={iss}%2Fother&launch=abc", 403, "smart-iss-not-trusted", id="another-path"),
    ],
)
def test_a_bad_launch_is_a_page_and_fetches_nothing(smart: FlaskClient, ehr: SmartEhr, query, status, code):
    response = smart.get("/questions/smart/launch?" + query.format(iss=quote(ehr.base_url, safe="")))

    _refused_page(response, status, code)
    assert "Set-Cookie" not in response.headers
    assert ehr.received == []  # nothing is fetched from a URL the caller chose


@pytest.mark.parametrize(
    ("knobs", "code"),
    [
        pytest.param({"configuration_status": 500}, "smart-configuration-unavailable", id="config-500"),
        pytest.param({"configuration_body": b"<html>"}, "smart-configuration-unavailable", id="not-json"),
        pytest.param(
            {"configuration_body": b"[" + b" " * 70_000 + b"]"},
            "smart-configuration-unavailable",
            id="too-large",
        ),
        pytest.param({"configuration_body": b"[]"}, "smart-configuration-invalid", id="not-an-object"),
        pytest.param(
            {"configuration": {"code_challenge_methods_supported": ["plain"]}},
            "smart-configuration-invalid",
            id="no-s256",
        ),
        pytest.param(
            {"configuration": {"code_challenge_methods_supported": None}},
            "smart-configuration-invalid",
            id="pkce-methods-not-listed",
        ),
        pytest.param(
            {"configuration": {"authorization_response_iss_parameter_supported": True, "issuer": None}},
            "smart-configuration-invalid",
            id="iss-parameter-without-issuer",
        ),
        pytest.param(
            {"configuration": {"token_endpoint": "http://ehr.example/token"}},
            "smart-configuration-invalid",
            id="plain-http-token-endpoint",
        ),
        pytest.param(
            {"configuration": {"authorization_endpoint": None}},
            "smart-configuration-invalid",
            id="no-authorize",
        ),
    ],
)
def test_an_unusable_smart_configuration_is_a_502_page(smart: FlaskClient, ehr: SmartEhr, knobs, code):
    for name, value in knobs.items():
        setattr(ehr.knobs, name, value)
    _refused_page(_launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context="x")), 502, code)


def test_an_unreachable_ehr_is_a_502_page(make_client: Callable[..., FlaskClient]):
    with SmartEhr(client_id=CLIENT_ID, redirect_uri=REDIRECT_URI) as gone:
        iss = gone.base_url
    client = make_client(demo=True, questions_key="k" * 32, smart_client_id=CLIENT_ID, smart_issuers=(iss,))
    response = client.get(f"/questions/smart/launch?iss={quote(iss, safe='')}&launch=abc")
    _refused_page(response, 502, "smart-configuration-unavailable")


@pytest.mark.parametrize(
    ("knobs", "status", "code"),
    [
        pytest.param({"deny": "access_denied"}, 403, "smart-authorization-denied", id="denied"),
        pytest.param({"token_status": 500}, 502, "smart-token-exchange-failed", id="token-500"),
        pytest.param({"token_drop": ("appContext",)}, 502, "smart-app-context-missing", id="no-app-context"),
        pytest.param({"token_drop": ("patient",)}, 403, "smart-patient-missing", id="no-patient"),
        pytest.param(
            {"token_extra": {"patient": "someone-else"}}, 403, "smart-patient-mismatch", id="other-patient"
        ),
        pytest.param(
            {"token_extra": {"appContext": "unknown-assessment"}}, 404, "no-questions", id="unknown-context"
        ),
        pytest.param(
            {"token_extra": {"appContext": "x" * 65}}, 502, "smart-app-context-invalid", id="long-context"
        ),
        pytest.param(
            {"token_extra": {"appContext": "\u202eabc"}}, 502, "smart-app-context-invalid", id="odd-context"
        ),
    ],
)
def test_a_launch_the_ehr_does_not_vouch_for_opens_nothing(
    smart: FlaskClient, ehr: SmartEhr, knobs, status, code
):
    for name, value in knobs.items():
        setattr(ehr.knobs, name, value)

    assessment_id, callback = _launched(smart, ehr)

    _refused_page(callback, status, code)
    assert "Location" not in callback.headers
    assert "SECRET-ACCESS-TOKEN" not in callback.get_data(as_text=True)
    assert stored(smart, assessment_id).get("answers") is None  # nothing stored


def test_the_patient_may_be_given_as_a_reference(smart: FlaskClient, ehr: SmartEhr):
    _, callback = _launched(smart, ehr, patient=f"Patient/{NO_VITALS}")
    assert callback.status_code == 303


def test_an_answered_assessment_is_409(smart: FlaskClient, ehr: SmartEhr):
    assessment_id, callback = _launched(smart, ehr)
    token = parse_qs(urlsplit(callback.headers["Location"]).query)["token"][0]
    smart.post(f"/questions/{assessment_id}", data={"token": token, "fever": "no"})

    _, again = _launched(smart, ehr, app_context=assessment_id)
    _refused_page(again, 409, "questions-already-answered")


def test_an_expired_link_or_a_slow_launch_is_refused(smart: FlaskClient, ehr: SmartEhr, clock):
    link = _signed_with_smart_link(smart, ehr)
    started = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    back = _at_the_ehr(started.headers["Location"])
    clock.now += timedelta(minutes=10)
    _refused_page(smart.get(back), 400, "smart-launch-expired")

    clock.now += timedelta(minutes=15)
    started = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    clock.now += timedelta(minutes=6)  # a fresh launch, but the link itself (30 minutes) has gone
    _refused_page(smart.get(_at_the_ehr(started.headers["Location"])), 403, "questions-link-expired")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        pytest.param("/questions/smart/callback?code=abc", "smart-state-missing", id="no-state"),
        pytest.param("/questions/smart/callback?code=abc&state=..", "smart-state-missing", id="odd-state"),
        pytest.param(
            "/questions/smart/callback?code=abc&state=" + "A" * 32, "smart-state-unknown", id="no-cookie"
        ),
    ],
)
def test_a_callback_this_browser_did_not_start_is_refused(smart: FlaskClient, path, code):
    _refused_page(smart.get(path), 400, code)


def test_an_altered_launch_cookie_is_refused(smart: FlaskClient, ehr: SmartEhr):
    link = _signed_with_smart_link(smart, ehr)
    started = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    back = _at_the_ehr(started.headers["Location"])
    state = parse_qs(urlsplit(back).query)["state"][0]
    name = f"lbp_smart_{state}"
    sealed = started.headers["Set-Cookie"].split(";")[0].removeprefix(f"{name}=")
    smart.set_cookie(
        name, sealed[:-3] + ("AAA" if not sealed.endswith("AAA") else "BBB"), path="/questions/smart/callback"
    )

    _refused_page(smart.get(back), 400, "smart-state-invalid")


def test_a_missing_code_is_refused(smart: FlaskClient, ehr: SmartEhr):
    link = _signed_with_smart_link(smart, ehr)
    started = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    back = _at_the_ehr(started.headers["Location"])
    state = parse_qs(urlsplit(back).query)["state"][0]
    _refused_page(smart.get(f"/questions/smart/callback?state={state}"), 400, "smart-code-missing")


def test_smart_launch_off_is_a_404_page(demo: FlaskClient):
    _refused_page(
        demo.get("/questions/smart/launch?iss=https%3A%2F%2Fehr.example&launch=x"), 404, "smart-launch-off"
    )
    _refused_page(demo.get("/questions/smart/callback?state=x&code=y"), 404, "smart-launch-off")


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        pytest.param({"smart_client_id": "x"}, "CDS_SMART_ISSUERS", id="no-issuers"),
        pytest.param({"smart_issuers": ("https://ehr.example/fhir",)}, "CDS_SMART_CLIENT_ID", id="no-client"),
        pytest.param(
            {"smart_client_id": "x", "smart_issuers": ("http://ehr.example/fhir",)},
            "CDS_SMART_ISSUERS",
            id="plain-http",
        ),
        pytest.param(
            {"smart_client_id": "x", "smart_issuers": ("https://ehr.example/fhir",), "smart_scope": "openid"},
            "CDS_SMART_SCOPE",
            id="no-launch-scope",
        ),
    ],
)
def test_misset_smart_settings_fail_start_up_naming_the_variable(settings_overrides, settings, names):
    with pytest.raises(ConfigError, match=names):
        create_app({**settings_overrides, **settings})


def test_behind_https_the_launch_cookie_is_secure_and_cleared_with_the_same_attributes(
    make_client: Callable[..., FlaskClient],
):
    base = "https://cds.example.org"
    with SmartEhr(client_id=CLIENT_ID, redirect_uri=f"{base}/questions/smart/callback") as ehr:
        client = make_client(
            demo=True,
            admin_token=ADMIN_TOKEN,
            questions_key="k" * 32,
            smart_client_id=CLIENT_ID,
            smart_issuers=(ehr.base_url,),
            public_base_urls=(base,),
        )
        link = _signed_with_smart_link(client, ehr)
        assert link["url"] == f"{base}/questions/smart/launch"
        launch_id = ehr.launch(patient=NO_VITALS, app_context=link["appContext"])
        started = client.get(
            f"/questions/smart/launch?iss={quote(ehr.base_url, safe='')}&launch={launch_id}", base_url=base
        )
        assert started.status_code == 302
        set_cookie = started.headers["Set-Cookie"]
        back = requests.get(started.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
        callback = client.get(back.removeprefix(base), base_url=base)

    assert callback.status_code == 303, callback.get_data(as_text=True)
    cleared = callback.headers["Set-Cookie"]
    for attributes in (set_cookie, cleared):
        assert "Secure" in attributes
        assert "HttpOnly" in attributes
        assert "SameSite=Lax" in attributes
        assert "Path=/questions/smart/callback" in attributes
    assert "Max-Age=0" in cleared


def test_a_launch_from_another_configured_ehr_is_refused(
    make_client: Callable[..., FlaskClient], ehr: SmartEhr
):
    with SmartEhr(client_id=CLIENT_ID, redirect_uri=REDIRECT_URI) as other:
        client = make_client(
            demo=True,
            admin_token=ADMIN_TOKEN,
            questions_key="k" * 32,
            smart_client_id=CLIENT_ID,
            smart_issuers=(ehr.base_url, other.base_url),
        )
        link = _signed_with_smart_link(client, ehr)  # offered to `ehr`
        started = _launch(client, other, other.launch(patient=NO_VITALS, app_context=link["appContext"]))
        callback = client.get(_at_the_ehr(started.headers["Location"]))

    _refused_page(callback, 403, "smart-issuer-mismatch")


def test_an_assessment_offered_with_the_absolute_link_cannot_be_smart_launched(
    smart: FlaskClient, ehr: SmartEhr
):
    absolute = _smart_link(sign_order(smart, NO_VITALS, drop=("observations",)))
    assessment_id = urlsplit(absolute["url"]).path.rsplit("/", 1)[1]

    _, callback = _launched(smart, ehr, app_context=assessment_id)

    _refused_page(callback, 403, "smart-issuer-mismatch")


def test_a_valid_cookie_from_another_launch_is_refused(smart: FlaskClient, ehr: SmartEhr):
    link = _signed_with_smart_link(smart, ehr)
    first = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    second = _launch(smart, ehr, ehr.launch(patient=NO_VITALS, app_context=link["appContext"]))
    first_sealed = first.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    back = _at_the_ehr(second.headers["Location"])
    second_state = parse_qs(urlsplit(back).query)["state"][0]
    smart.set_cookie(f"lbp_smart_{second_state}", first_sealed, path="/questions/smart/callback")

    _refused_page(smart.get(back), 400, "smart-state-invalid")


def test_an_ehr_that_names_itself_in_responses_must_name_itself_rightly(smart: FlaskClient, ehr: SmartEhr):
    ehr.knobs.configuration = {"authorization_response_iss_parameter_supported": True}
    _, callback = _launched(smart, ehr)
    assert callback.status_code == 303, callback.get_data(as_text=True)

    ehr.knobs.response_iss = "https://mix-up.example/fhir"
    _, callback = _launched(smart, ehr)
    _refused_page(callback, 400, "smart-response-iss-mismatch")


def test_an_ehr_that_is_down_is_asked_again_only_after_a_while(smart: FlaskClient, ehr: SmartEhr):
    ehr.knobs.configuration_status = 503
    for _ in range(3):
        _refused_page(_launch(smart, ehr, "abc"), 502, "smart-configuration-unavailable")
    assert ehr.paths() == ["/fhir/.well-known/smart-configuration"]


def test_a_launch_logs_no_code_token_launch_or_patient(smart: FlaskClient, ehr: SmartEhr, caplog):
    caplog.set_level(logging.DEBUG)
    link = _signed_with_smart_link(smart, ehr)
    launch_id = ehr.launch(patient=NO_VITALS, app_context=link["appContext"])
    caplog.clear()

    started = _launch(smart, ehr, launch_id)
    back = _at_the_ehr(started.headers["Location"])
    callback = smart.get(back)

    assert callback.status_code == 303
    code = parse_qs(urlsplit(back).query)["code"][0]
    token = parse_qs(urlsplit(callback.headers["Location"]).query)["token"][0]
    (token_call,) = [r for r in ehr.received if r.path == "/auth/token"]
    secrets = {code, token, launch_id, token_call.params["code_verifier"], "SECRET-ACCESS-TOKEN", NO_VITALS}
    lines = [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
    assert any("smart-launch-opened" in line for line in lines)  # the log was captured
    for line in lines:
        assert not [secret for secret in secrets if secret in line], line
