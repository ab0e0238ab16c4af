"""The audit reads a generated export back: every lumbar order judged as the generator meant it, as of its
own date, through the hook's route; bad input counted and reported, never fatal."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.audit.reader import ExportError
from service.audit.run import Options, run_audit
from tests.audit.conftest import HASH_KEY, known_answers, read_rows

ROOT = Path(__file__).resolve().parents[2]


def _verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        reference: (
            row["date"],
            row["procedure"],
            row["orderer"],
            row["appropriateness"],
            row["variants"],
            sorted(flag["id"] for flag in row["redFlags"]),
        )
        for reference, row in rows.items()
    }


def _intended(known: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        order["reference"]: (
            order["date"],
            order["procedure"],
            order["orderer"],
            order["appropriateness"],
            order["variants"],
            order["redFlags"],
        )
        for order in known["orders"]
    }


@pytest.fixture(scope="module")
def report(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    run_audit(Options(export=export, out=out, workers=1, hash_key=HASH_KEY))
    return out


def test_every_order_is_judged_as_the_generator_meant_it(export: Path, report: Path) -> None:
    known = known_answers(export)
    assert len(known["orders"]) > 100  # enough to cover every scenario
    assert _verdicts(read_rows(report)) == _intended(known)


def test_an_order_is_judged_on_what_the_record_held_that_day(export: Path, report: Path) -> None:
    """A fever recorded after the order, and a cancer diagnosed between two orders, do not count earlier."""
    known = known_answers(export)
    rows = read_rows(report)
    by_scenario: dict[str, list[str]] = {}
    for order in known["orders"]:
        by_scenario.setdefault(order["scenario"], []).append(order["reference"])
    assert by_scenario["acute-fever-after-order"]
    for reference in by_scenario["acute-fever-after-order"]:
        assert rows[reference]["appropriateness"] == "usually-not-appropriate"
        assert "fever" not in {flag["id"] for flag in rows[reference]["redFlags"]}
    pairs = by_scenario["cancer-between-orders"]
    assert len(pairs) >= 2
    verdicts = sorted((rows[r]["date"], rows[r]["appropriateness"]) for r in pairs)
    assert {verdict for _, verdict in verdicts} == {"usually-not-appropriate", "usually-appropriate"}


def test_patients_appear_only_as_keyed_hashes(export: Path, report: Path) -> None:
    known = known_answers(export)
    text = (report / "orders.csv").read_text() + (report / "orders.ndjson").read_text()
    for order in known["orders"]:
        assert order["patient"] not in text
        assert order["patient"].removeprefix("Patient/") not in text
    rows = read_rows(report)
    assert all(len(row["patient"]) == 64 for row in rows.values())


def test_the_csv_has_a_row_per_order_with_evidence(report: Path) -> None:
    with (report / "orders.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(read_rows(report))
    flagged = [row for row in table if "cancer-history" in row["red_flags"]]
    assert flagged
    assert all(row["red_flag_evidence"].startswith("cancer-history=Condition/") for row in flagged)


def test_the_summary_counts_what_was_read(export: Path, report: Path) -> None:
    known = known_answers(export)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["patients"] == known["patients"]
    expected = {k: v for k, v in known["resources"].items() if k != "Practitioner"}
    assert summary["input"]["resources"] == expected
    assert summary["input"]["resourcesNotRead"] == {"Practitioner": known["resources"]["Practitioner"]}
    assert summary["input"]["badInput"]["count"] == 0
    assert summary["orders"]["judged"] == len(known["orders"])


def test_the_window_limits_the_orders_judged(export: Path, tmp_path: Path) -> None:
    known = known_answers(export)
    run_audit(
        Options(
            export=export,
            out=tmp_path,
            start=date(2025, 6, 1),
            end=date(2025, 6, 30),
            hash_key=HASH_KEY,
        )
    )
    june = {o["reference"] for o in known["orders"] if o["date"].startswith("2025-06")}
    assert set(read_rows(tmp_path)) == june


def test_bad_input_is_counted_reported_and_skipped(export: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "export"
    shutil.copytree(export, damaged)
    known = known_answers(export)
    patient = known["orders"][0]["patient"]
    (damaged / "Condition.900.ndjson").write_text(
        '{"resourceType":"Condition","subject":{"reference":"' + patient + '"},"code":\n'
        '{"resourceType":"NotAType","id":"x"}\n'
        '{"resourceType":"Condition","id":"orphan","code":{"text":"back pain"}}\n'
        "[1, 2]\n"
    )
    lines = (
        b'{"resourceType":"Observation","id":"o%d","subject":{"reference":"Patient/extra-%d"}}\n' % (i, i)
        for i in range(2000)
    )
    whole = gzip.compress(b"".join(lines))
    (damaged / "Observation.901.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "report"
    summary = run_audit(Options(export=damaged, out=out, hash_key=HASH_KEY))
    with (out / "bad-input.csv").open(newline="") as handle:
        listed = [(row["file"], row["line"], row["why"]) for row in csv.DictReader(handle)]
    by_place = {(file, line): why for file, line, why in listed}
    assert by_place[("Condition.900.ndjson", "1")].startswith("malformed JSON")
    assert by_place[("Condition.900.ndjson", "2")] == "unknown resource type 'NotAType'"
    assert by_place[("Condition.900.ndjson", "3")] == "Condition with no subject Patient"
    assert by_place[("Condition.900.ndjson", "4")] == "not a JSON object"
    truncated = [why for (file, _), why in by_place.items() if file == "Observation.901.ndjson.gz"]
    assert len(truncated) == 1
    assert truncated[0].startswith("damaged or truncated file")
    assert summary["input"]["badInput"]["count"] == 5
    # Skipped, not fatal: every order is still judged, and what the damage hides is said, not guessed.
    rows = read_rows(out)
    assert set(rows) == {order["reference"] for order in known["orders"]}
    assert summary["input"]["partsReadInPart"] == ["conditions", "observations"]
    assert all("observations-incomplete" in row["dataGaps"] for row in rows.values())


def test_a_missing_or_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        run_audit(Options(export=tmp_path / "nowhere", out=tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"no \.ndjson"):
        run_audit(Options(export=tmp_path / "empty", out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def _cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_the_cli_audits_with_all_cores_and_exits_2_on_an_empty_folder(export: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CDS_PATIENT_HASH_KEY": HASH_KEY.decode()}
    done = _cli("audit", str(export), "--out", str(tmp_path / "report"), "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar
    assert _verdicts(read_rows(tmp_path / "report")) == _intended(known_answers(export))
    (tmp_path / "empty").mkdir()
    failed = _cli("audit", str(tmp_path / "empty"), "--out", str(tmp_path / "r2"))
    assert failed.returncode == 2
    assert "no .ndjson" in failed.stderr
    missing = _cli("audit", str(tmp_path / "missing"), "--out", str(tmp_path / "r3"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
