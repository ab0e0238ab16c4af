"""The audit on Dask distributed (a real LocalCluster: scheduler and worker processes on loopback) writes
the same report as on this machine's processes, and still reproduces the generator's known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.audit.engines import DaskEngine
from service.audit.run import Options, WorkSpec, judge_spec, run_audit
from tests.audit.conftest import HASH_KEY, known_answers, read_rows
from tests.audit.test_scale import _comparable

pytestmark = pytest.mark.slow


def test_a_dask_cluster_writes_the_same_report_as_local_processes(export: Path, tmp_path: Path) -> None:
    run_audit(Options(export=export, out=tmp_path / "local", workers=2, hash_key=HASH_KEY))
    with DaskEngine(workers=2) as engine:
        run_audit(Options(export=export, out=tmp_path / "dask", workers=2, hash_key=HASH_KEY), engine=engine)

    local, dask = _comparable(tmp_path / "local"), _comparable(tmp_path / "dask")
    assert dask == local
    assert (tmp_path / "dask" / "bad-input.csv").read_text() == (
        tmp_path / "local" / "bad-input.csv"
    ).read_text()
    answers = {order["reference"]: order["appropriateness"] for order in known_answers(export)["orders"]}
    rows = read_rows(tmp_path / "dask")
    assert {reference: row["appropriateness"] for reference, row in rows.items()} == answers


def test_a_worker_with_other_rules_refuses_to_judge(tmp_path: Path) -> None:
    spec = WorkSpec(tmp_path, 0, frozenset(), frozenset(), HASH_KEY, None, None, rules_version="0.0.0-other")
    with DaskEngine(workers=1) as engine, pytest.raises(RuntimeError, match="deploy one release"):
        list(engine.map(judge_spec, [spec], [0]))
