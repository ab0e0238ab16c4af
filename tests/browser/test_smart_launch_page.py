"""The SMART App Launch of the questions page in headless Chromium: real gunicorn as the SMART app, a real
authorization server on loopback as the EHR. The EHR opens the card's `smart` link with `iss` and
`launch`; the browser goes through the EHR's authorize endpoint and back (the launch cookie must survive
the round trip), lands on the questions page, answers "fever: yes" and sees the new verdict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_TOKEN
from tests.browser.test_demo_page import _assessment
from tests.demo.conftest import draft_order, hook_call
from tests.support.gunicorn_server import running_gunicorn
from tests.support.smart_ehr import SmartEhr

pytestmark = pytest.mark.slow

NO_VITALS = "demo-no-observations"


class _Http:
    """The few calls `tests.demo.conftest` makes of a Flask test client, over real HTTP to gunicorn."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str) -> _Answer:
        return _Answer(requests.get(self.base_url + path, timeout=10))

    def post(self, path: str, json: Any) -> _Answer:
        return _Answer(requests.post(self.base_url + path, json=json, timeout=10))


class _Answer:
    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.is_json = response.headers.get("Content-Type", "").startswith("application/json")
        self._response = response

    def get_json(self) -> Any:
        return self._response.json()

    def get_data(self, as_text: bool = False) -> str:
        return self._response.text


@pytest.fixture(scope="module")
def smart_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SmartEhr]]:
    with SmartEhr(client_id="lbp-questions", redirect_uri="(set below)") as ehr:
        settings = {
            "CDS_DEMO": "true",
            "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
            "CDS_QUESTIONS_KEY": "browser-questions-key-0123456789abcdef",
            "CDS_SMART_CLIENT_ID": "lbp-questions",
            "CDS_SMART_ISSUERS": ehr.base_url,
        }
        with running_gunicorn(tmp_path_factory.mktemp("smart-service"), settings) as (_, base_url):
            ehr.redirect_uri = f"{base_url}/questions/smart/callback"
            yield base_url, ehr


def test_a_smart_launch_opens_the_questions_and_fever_yes_turns_the_verdict_to_mri(
    page: Page, smart_service: tuple[str, SmartEhr]
):
    base_url, ehr = smart_service
    http: Any = _Http(base_url)
    order = draft_order(http, NO_VITALS, "mri-lumbar-without-contrast")
    answer = hook_call(http, "order-sign", NO_VITALS, [order], fhir_server=ehr.base_url)
    (card,) = answer["cards"]
    (link,) = [link for link in card["links"] if link["type"] == "smart"]
    launch = ehr.launch(patient=NO_VITALS, app_context=link["appContext"])

    # The EHR opens the smart link with its launch parameters.
    page.goto(f"{link['url']}?iss={quote(ehr.base_url, safe='')}&launch={launch}")

    expect(page.locator("h1")).to_have_text("Questions the record could not answer")
    assert page.url.startswith(f"{base_url}/questions/{link['appContext']}?token=")
    assert [request.path for request in ehr.received][-2:] == ["/auth/authorize", "/auth/token"]
    expect(page.locator("fieldset")).to_have_count(2)
    page.locator("#q-fever").get_by_label("Yes").check()
    page.get_by_role("button", name="Re-judge the order").click()

    expect(page.locator("h1")).to_have_text("The answers changed the verdict")
    after = page.locator("table.compare tbody tr td").nth(1)
    expect(after).to_contain_text("Lumbar MRI without contrast: usually appropriate")
    assert page.context.cookies() == []  # the launch cookie was spent on the callback
    record = _assessment(base_url, link["appContext"])
    assert record["answers"]["verdictAfter"]["variants"] == ["V7"]


def test_a_launch_from_an_ehr_that_is_not_configured_shows_why(
    page: Page, smart_service: tuple[str, SmartEhr]
):
    base_url, _ = smart_service
    refused = page.context.new_page()  # the fixture's page fails on a logged 403, which is the point here
    response = refused.goto(
        f"{base_url}/questions/smart/launch?iss={quote('https://ehr.example/fhir')}&launch=x"
    )

    assert response is not None
    assert response.status == 403
    expect(refused.locator("body")).to_contain_text(
        "this EHR (iss) is not one this service may be launched from"
    )
