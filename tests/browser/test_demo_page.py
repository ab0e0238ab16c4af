"""The order-entry demo page in headless Chromium against real gunicorn: for every sample patient, each
order the index lists gets its expected card on order-select and on order-sign; a taken suggestion changes
the draft orders and its feedback is stored; an override stores its reason."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from service.demo.patients import load_index
from tests.browser.conftest import ADMIN_TOKEN, save_screenshot

pytestmark = pytest.mark.slow
INDEX = load_index()
PATIENTS = [pytest.param(patient, id=patient["id"]) for patient in INDEX["patients"]]
WITH_SUGGESTIONS = [
    pytest.param(patient, id=patient["id"])
    for patient in INDEX["patients"]
    if any(order["expect"].get("suggests") for order in patient["orders"])
]


def _open(page: Page, base_url: str, patient_id: str) -> None:
    page.goto(f"{base_url}/demo?patient={patient_id}")
    expect(page.locator("#status")).to_contain_text("Record read for")


def _order(page: Page, procedure: str, reason: str = "") -> None:
    page.select_option("#order-select", procedure)
    page.select_option("#reason-select", reason)
    before = page.locator("#draft-orders li[data-id]").count()
    page.click("#add-order")
    expect(page.locator("#draft-orders li[data-id]")).to_have_count(before + 1)
    expect(page.locator("#status")).to_contain_text("order-select:")


def _sign(page: Page) -> None:
    page.click("#sign-orders")
    expect(page.locator("#status")).to_contain_text("order-sign:")


def _card(page: Page, order_id: str) -> Any:
    return page.locator(f'article.card[data-order="ServiceRequest/{order_id}"]')


def _assessment(base_url: str, assessment_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{base_url}/assessments/{assessment_id}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


@pytest.mark.parametrize("patient", PATIENTS)
def test_every_expected_card_shows_on_select_and_on_sign(
    page: Page, demo_service: str, patient: dict[str, Any]
):
    _open(page, demo_service, patient["id"])
    for number, order in enumerate(patient["orders"], start=1):
        _order(page, order["procedure"])
        card = _card(page, f"draft-{number}")
        expect(card).to_have_count(1)
        expect(card).to_have_attribute("data-indicator", order["expect"]["indicator"])
        assert card.locator(".summary").inner_text().strip()
        expect(page.locator("article.card")).to_have_count(1)  # order-select judges the selected order only

    _sign(page)
    expect(page.locator("article.card")).to_have_count(len(patient["orders"]))
    for number, order in enumerate(patient["orders"], start=1):
        card = _card(page, f"draft-{number}")
        expect(card).to_have_attribute("data-indicator", order["expect"]["indicator"])
        if order["expect"]["urgent"]:  # the urgent action comes first, the rating in the detail
            expect(card.locator(".summary")).to_contain_text("Urgent")
        else:
            words = order["expect"]["appropriateness"].replace("-", " ")
            expect(card.locator(".summary")).to_contain_text(words)


@pytest.mark.parametrize("patient", WITH_SUGGESTIONS)
def test_taking_a_suggestion_changes_the_draft_and_stores_the_feedback(
    page: Page, demo_service: str, patient: dict[str, Any]
):
    order = next(o for o in patient["orders"] if o["expect"].get("suggests"))
    _open(page, demo_service, patient["id"])
    _order(page, order["procedure"])
    _sign(page)
    card = _card(page, "draft-1")
    expect(card.locator(".summary")).to_be_visible()
    before = page.locator("#draft-orders").inner_text()
    assessment_id = card.get_attribute("data-assessment")
    assert assessment_id

    card.locator("button.suggestion").first.click()

    expect(card.locator(".outcome")).to_contain_text("Feedback recorded")
    after = page.locator("#draft-orders").inner_text()
    assert after != before
    if order["expect"]["suggests"] == "physical-therapy":
        assert "Physical therapy" in after
    else:
        suggested = INDEX["orderCodes"][order["expect"]["suggests"]]["display"].split(" ")[0]  # "MRI"
        assert suggested.lower() in after.lower()
    if order["expect"]["indicator"] != "critical" and patient["id"] == "demo-acute":
        save_screenshot(page, "demo-usually-not-appropriate-suggestion-taken.png")
    (stored,) = _assessment(demo_service, assessment_id)["orders"]
    (item,) = stored["feedback"]
    assert item["outcome"] == "accepted"
    assert item["acceptedSuggestions"] == [stored["suggestionUuids"][0]]


def test_an_override_stores_its_reason(page: Page, demo_service: str):
    _open(page, demo_service, "demo-subacute")
    _order(page, "mri-lumbar-without-contrast", reason="low-back-pain")
    _sign(page)
    card = _card(page, "draft-1")
    assessment_id = card.get_attribute("data-assessment")
    assert assessment_id
    card.locator("select.override-reason").select_option(label="Patient preference")

    card.locator("button.override-button").click()

    expect(card.locator(".outcome")).to_contain_text("Overridden: Patient preference")
    (stored,) = _assessment(demo_service, assessment_id)["orders"]
    (item,) = stored["feedback"]
    assert item["outcome"] == "overridden"
    assert item["overrideReason"]["code"] == "patient-preference"
    expect(card.locator("button.suggestion").first).to_be_disabled()


def test_an_urgent_card_renders_its_detail_source_links_and_rating(page: Page, demo_service: str):
    _open(page, demo_service, "demo-cauda-equina")
    _order(page, "mri-lumbar-without-contrast")
    _sign(page)
    card = _card(page, "draft-1")

    expect(card).to_have_attribute("data-indicator", "critical")
    expect(card.locator(".detail strong").first).to_be_visible()  # markdown rendered, not shown raw
    assert "**" not in card.locator(".detail").inner_text()
    expect(card.locator(".source a")).to_have_attribute(
        "href", "https://acsearch.acr.org/docs/69483/Narrative/"
    )
    assert card.locator(".links a").count() >= 1
    expect(page.locator("#draft-orders .rating")).to_contain_text("PAMA rating: appropriate")
    save_screenshot(page, "demo-urgent-cauda-equina.png")


def test_the_page_is_keyboard_operable(page: Page, demo_service: str):
    page.goto(f"{demo_service}/demo")
    expect(page.locator("#patient-select")).to_be_enabled()
    page.focus("#patient-select")
    page.keyboard.press("ArrowDown")  # the first patient
    expect(page.locator("#status")).to_contain_text("Record read for")
    page.focus("#add-order")
    page.keyboard.press("Enter")
    expect(page.locator("article.card")).to_have_count(1)
    for control in ("#patient-select", "#order-select", "#reason-select", "#add-order", "#sign-orders"):
        assert page.locator(f"label[for='{control[1:]}']").count() or page.locator(control).inner_text()


def test_an_unknown_patient_gets_a_clear_message_not_a_broken_page(browser: Browser, demo_service: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo_service}/demo?patient=no-such-patient")
    page.select_option("#order-select", "xr-lumbar")
    expect(page.locator("#add-order")).to_be_disabled()  # no such patient in the picker: nothing to order for
    answer = page.request.get(
        f"{demo_service}/demo/api/draft-order?patient=no-such-patient&procedure=xr-lumbar"
    )
    assert answer.status == 404
    assert answer.json()["message"] == "no sample patient 'no-such-patient'"
    answer = page.request.get(f"{demo_service}/demo/api/draft-order?patient=demo-acute&procedure=pet-ct")
    assert answer.status == 400
    assert "unknown order 'pet-ct'" in answer.json()["message"]
    context.close()
