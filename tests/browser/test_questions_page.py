"""The red-flag questions in headless Chromium against real gunicorn: the demo patient whose EHR sends no
vital signs gets a card with the questions link; the clinician opens it from the card, answers
"fever: yes", sees the new verdict (the infection variant, MRI usually appropriate), and the audit
record keeps both verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import save_screenshot
from tests.browser.test_demo_page import _assessment, _card, _open, _order, _sign

pytestmark = pytest.mark.slow


def _open_questions_from_the_card(page: Page, demo_service: str) -> tuple[Page, str]:
    _open(page, demo_service, "demo-no-observations")
    _order(page, "mri-lumbar-without-contrast")
    _sign(page)
    card = _card(page, "draft-1")
    expect(card).to_have_attribute("data-indicator", "warning")
    link = card.locator(".links a", has_text="Answer 2 questions the record could not")
    expect(link).to_be_visible()
    href = link.get_attribute("href") or ""
    assert href.startswith(f"{demo_service}/questions/")
    assessment_id = href.removeprefix(f"{demo_service}/questions/").split("?")[0]
    with page.context.expect_page() as opened:
        link.click()
    questions = opened.value
    questions.wait_for_load_state()
    return questions, assessment_id


def test_answering_fever_yes_from_the_card_turns_the_verdict_to_mri(page: Page, demo_service: str):
    questions, assessment_id = _open_questions_from_the_card(page, demo_service)

    expect(questions.locator("h1")).to_have_text("Questions the record could not answer")
    expect(questions.locator("fieldset")).to_have_count(2)
    expect(questions.locator("#q-fever legend")).to_contain_text(
        "Fever (38.0 °C or higher) in the last 7 days?"
    )
    expect(questions.locator(".verdict.warning")).to_contain_text("usually not appropriate")
    questions.locator("#q-fever").get_by_label("Yes").check()
    save_screenshot(questions, "questions-page.png")
    questions.get_by_role("button", name="Re-judge the order").click()

    expect(questions.locator("h1")).to_have_text("The answers changed the verdict")
    after = questions.locator("table.compare tbody tr td").nth(1)
    expect(after).to_contain_text("Lumbar MRI without contrast: usually appropriate")
    expect(questions.locator("#why + ul")).to_contain_text("V7, suspected cancer or infection")
    expect(questions.locator("ul.answers")).to_contain_text("fever: yes, red flag added (clinician-reported)")
    save_screenshot(questions, "questions-answered.png")
    record: dict[str, Any] = _assessment(demo_service, assessment_id)
    assert record["answers"]["verdictBefore"]["variants"] == ["V1"]
    assert record["answers"]["verdictAfter"]["variants"] == ["V7"]
    assert record["answers"]["verdictAfter"]["orders"][0]["appropriateness"] == "usually-appropriate"
    questions.close()


def test_the_questions_page_is_keyboard_operable(page: Page, demo_service: str):
    questions, assessment_id = _open_questions_from_the_card(page, demo_service)

    questions.focus("#q-fever input[value=no]")
    questions.keyboard.press("Space")
    questions.keyboard.press("Tab")  # leaves the radio group
    questions.focus("button[type=submit]")
    questions.keyboard.press("Enter")

    expect(questions.locator("h1")).to_have_text("The verdict stands")
    assert _assessment(demo_service, assessment_id)["answers"]["answers"] == [
        {"redFlag": "fever", "answer": "no"}
    ]
    questions.close()
