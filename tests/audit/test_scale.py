"""The same report whatever the number of workers; a progress bar only on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

from service.audit.progress import Bar, progress_for
from service.audit.run import Options, run_audit


def _comparable(report: Path) -> dict[str, object]:
    summary = json.loads((report / "summary.json").read_text())
    for key in ("seconds", "workers"):
        summary.pop(key)
    summary.pop("export")
    return {
        "summary": summary,
        "orders.ndjson": (report / "orders.ndjson").read_text(),
        "orders.csv": (report / "orders.csv").read_text(),
        "measure-patients.csv": (report / "measure-patients.csv").read_text(),
    }


def test_two_workers_write_the_same_report_as_one(export: Path, tmp_path: Path) -> None:
    run_audit(Options(export=export, out=tmp_path / "one", workers=1, hash_key=b"k"))
    run_audit(Options(export=export, out=tmp_path / "two", workers=2, hash_key=b"k"))
    one, two = _comparable(tmp_path / "one"), _comparable(tmp_path / "two")
    assert one == two
    assert str(one["orders.csv"]).count("\n") > 100


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_rate_and_eta_on_a_terminal_only() -> None:
    assert progress_for(io.StringIO()) is None
    screen = _Terminal()
    bar = progress_for(screen)
    assert isinstance(bar, Bar)
    bar("judge", 1, 4, 1000)
    bar("judge", 4, 4, 4000)
    shown = screen.getvalue()
    assert "4/4" in shown
    assert "patients/s" in shown
    assert "ETA" in shown
    assert shown.endswith("\n")
