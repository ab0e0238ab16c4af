"""Headless Chromium (Debian's, driven by Playwright for Python) against the service under real gunicorn
with the demo page on. A failing test leaves a screenshot in test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import REPO_ROOT
from tests.support.gunicorn_server import running_gunicorn

ADMIN_TOKEN = "browser-admin-token-0123456789abcdef"
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"


def chromium_executable() -> str:
    found = os.environ.get("LBP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is not installed: run scripts/install-chromium.sh (make test does)")
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_executable(), headless=True)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("demo-service")
    settings = {
        "CDS_DEMO": "true",
        "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CDS_PATIENT_HASH_KEY": "browser-test-key",
    }
    with running_gunicorn(folder, settings) as (_, base_url):
        yield base_url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name.replace('/', '_')}.png"
        opened.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failing page: {path}")
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def save_screenshot(page: Page, name: str) -> Path | None:
    """For the README: written only when LBP_SCREENSHOTS_DIR is set (make screenshots)."""
    folder = os.environ.get("LBP_SCREENSHOTS_DIR")
    if not folder:
        return None
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
