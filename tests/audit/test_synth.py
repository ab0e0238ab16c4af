"""The synthetic export: real files on disk, reproducible from its seed, realistic in mix, honest answers."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from service.audit.synth import KNOWN_ANSWERS, write_export

ROOT = Path(__file__).resolve().parents[2]


def _lines(folder: Path, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"{kind}.*.ndjson*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            found.extend(json.loads(line) for line in handle)
    return found


def test_the_same_seed_writes_the_same_export(tmp_path: Path) -> None:
    write_export(tmp_path / "a", patients=300, seed=5, patients_per_file=100)
    write_export(tmp_path / "b", patients=300, seed=5, patients_per_file=100)
    write_export(tmp_path / "c", patients=300, seed=6, patients_per_file=100)
    assert _lines(tmp_path / "a", "Observation") == _lines(tmp_path / "b", "Observation")
    assert _lines(tmp_path / "a", "Condition") != _lines(tmp_path / "c", "Condition")


def test_most_patients_have_no_back_pain_and_every_patient_has_vitals(tmp_path: Path) -> None:
    write_export(tmp_path, patients=600, seed=3, patients_per_file=200)
    known = json.loads((tmp_path / KNOWN_ANSWERS).read_text())
    back_pain = sum(known["scenarios"].values())
    assert 0.08 * 600 < back_pain < 0.3 * 600
    observations = _lines(tmp_path, "Observation")
    assert {o["subject"]["reference"] for o in observations} == {
        f"Patient/{p['id']}" for p in _lines(tmp_path, "Patient")
    }
    # Several files per type (patients_per_file), gzip by default.
    assert len(list(tmp_path.glob("Observation.*.ndjson.gz"))) == 3
    # Every known order is in the export, dated as stated and coded as lumbar imaging.
    orders = {f"ServiceRequest/{r['id']}": r for r in _lines(tmp_path, "ServiceRequest")}
    studies = {f"ImagingStudy/{r['id']}": r for r in _lines(tmp_path, "ImagingStudy")}
    for answer in known["orders"]:
        resource = orders.get(answer["reference"]) or studies[answer["reference"]]
        when = resource.get("authoredOn") or resource["started"]
        assert when.startswith(answer["date"])


def test_the_cli_writes_plain_ndjson_when_asked(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "synth-export",
            "--patients",
            "50",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
            "--no-gzip",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "50 patients" in completed.stdout
    assert list(tmp_path.glob("Patient.*.ndjson"))
    assert not list(tmp_path.glob("*.gz"))
