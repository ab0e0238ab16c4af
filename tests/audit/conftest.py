"""Generated exports on disk, shared by the audit tests (module scope: generating costs a second or two)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.audit.synth import KNOWN_ANSWERS, write_export

HASH_KEY = b"audit-test-key"


def known_answers(folder: Path) -> dict[str, Any]:
    answers: dict[str, Any] = json.loads((folder / KNOWN_ANSWERS).read_text(encoding="utf-8"))
    return answers


def read_rows(report: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with (report / "orders.ndjson").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows[row["order"]] = row
    return rows


@pytest.fixture(scope="package")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 patients, several gzip files per type."""
    folder = tmp_path_factory.mktemp("export")
    write_export(folder, patients=1500, seed=11, patients_per_file=400)
    return folder
