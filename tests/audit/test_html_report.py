"""report.html stands alone (no script, nothing fetched) and its plots render in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from service.audit.run import Options, run_audit

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "var" / "test-artifacts" / "audit-report.png"


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def page(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    run_audit(Options(export=export, out=out, hash_key=b"k"))
    return out / "report.html"


def test_the_report_needs_no_network(page: Path) -> None:
    parser = _Elements()
    parser.feed(page.read_text())
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags
    assert "link" not in tags
    assert "img" not in tags
    for _, attributes in parser.tags:
        for name in ("src", "href"):
            assert name not in attributes
    urls = set(re.findall(r"https?://[^\s\"'<]+", page.read_text()))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, not a fetch


def test_the_report_has_every_plot(page: Path) -> None:
    text = page.read_text()
    for title in (
        "By modality",
        "By month of the order",
        "By ordering clinician",
        "Most common missing data",
        "Rate without imaging within 28 days",
        "What this project does differently",
    ):
        assert title in text
    assert text.count("<svg") >= 6
    assert "defined in 2017" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_plots_render_in_headless_chromium(page: Path) -> None:
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    dom = subprocess.run(
        [*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # The page as Chromium built it: the SVG plots are in the document, bars and points drawn.
    assert dom.count("<svg") >= 6
    assert dom.count('class="bar"') > 20
    assert dom.count('class="point"') >= 2
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    subprocess.run(
        [*command, f"--screenshot={SCREENSHOT}", "--window-size=1200,2600", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank page of that size compresses to a few kilobytes
