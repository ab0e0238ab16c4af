"""`python -m service.cli report|purge`, run as an operator would: a subprocess with DATABASE_URL set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service import cli
from service.store import Store
from tests.store.builders import PATIENT_HASH_KEY, accepted, assessment, order, overridden
from tests.support.databases import sqlite_database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
ISS = "https://ehr.example.org"
ALVAREZ, BAKKER = "Practitioner/dr-alvarez-7734", "PractitionerRole/role-bakker-5521"


def _cli(database_url: str, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDS_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": database_url, **environment})
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def now() -> datetime:
    """The CLI runs on the real clock, so the records are placed relative to it."""
    return datetime.now(UTC).replace(microsecond=0)


def _fill(store: Store, now: datetime) -> None:
    store.save_assessment(assessment(1, created_at=now - timedelta(days=400), orders=(order(1),)))
    store.save_assessment(assessment(2, created_at=now - timedelta(days=3), orders=(order(2),)))
    store.save_assessment(
        assessment(
            3, created_at=now - timedelta(days=2), orders=(order(3, modality="XR", procedure="xr-lumbar"),)
        )
    )
    store.save_feedback(
        "lbp-imaging-order-sign",
        [accepted("card-2", now), overridden("card-3", now, "patient-preference")],
        client_iss=ISS,
    )


def test_report_prints_the_summary_as_tables(
    open_store: Callable[..., Store], database_url: str, now: datetime
) -> None:
    _fill(open_store(), now)
    start = (now - timedelta(days=10)).date().isoformat()

    result = _cli(database_url, "report", "--from", start)

    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["assessments", "2"] in lines
    assert ["MRI", "1"] in lines
    assert ["XR", "1"] in lines
    assert ["all", "cards", "2", "/", "2", "/", "1", "/", "1", "(50.0%,", "50.0%)"] in lines
    assert ["Reason", "patient-preference", "[patient-preference]", "1"] in lines


def test_report_as_json_equals_the_store_summary(
    open_store: Callable[..., Store], database_url: str, now: datetime
) -> None:
    store = open_store()
    _fill(store, now)

    result = _cli(database_url, "report", "--from", "2020-01-01", "--to", "2099-12-31", "--json")

    assert result.returncode == 0, result.stderr
    expected = store.summary(datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert json.loads(result.stdout) == expected
    assert expected["assessments"] == 3


def test_report_for_one_ordering_clinician(
    open_store: Callable[..., Store], database_url: str, now: datetime
) -> None:
    store = open_store()  # keyed with PATIENT_HASH_KEY, as the CLI is below
    day = timedelta(days=1)
    store.save_assessment(
        assessment(1, created_at=now - 2 * day, orderer_reference=ALVAREZ, orders=(order(1), order(10)))
    )
    store.save_assessment(assessment(2, created_at=now - day, orderer_reference=BAKKER))
    store.save_assessment(assessment(3, created_at=now - day))  # nobody recorded
    store.save_feedback(
        "lbp-imaging-order-sign", [accepted("card-1", now), overridden("card-2", now)], client_iss=ISS
    )
    period = ("--from", "2020-01-01", "--to", "2099-12-31")

    as_json = _cli(
        database_url, "report", *period, "--orderer", ALVAREZ, "--json", CDS_PATIENT_HASH_KEY=PATIENT_HASH_KEY
    )
    as_table = _cli(
        database_url, "report", *period, "--orderer", ALVAREZ, CDS_PATIENT_HASH_KEY=PATIENT_HASH_KEY
    )
    without_key = _cli(database_url, "report", *period, "--orderer", ALVAREZ)

    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    assert report == store.summary(start, end, orderer=ALVAREZ)
    assert (report["orderer"], report["assessments"], report["orders"]) == (ALVAREZ, 1, 2)
    assert (report["cards"]["accepted"], report["cards"]["overridden"]) == (1, 0)  # card-2 is Bakker's
    assert as_table.returncode == 0, as_table.stderr
    assert as_table.stdout.startswith(f"Assessments of orders by {ALVAREZ} from ")
    assert ["assessments", "1"] in [line.split() for line in as_table.stdout.splitlines()]
    assert "unknown cards" not in as_table.stdout  # not attributable to a clinician
    assert without_key.returncode == 2
    assert "needs CDS_PATIENT_HASH_KEY" in without_key.stderr
    assert without_key.stdout == ""


def test_purge_uses_the_retention_setting_or_the_option(
    open_store: Callable[..., Store], database_url: str, now: datetime
) -> None:
    store = open_store()
    _fill(store, now)

    by_setting = _cli(database_url, "purge", CDS_RETENTION_DAYS="365")
    assert by_setting.returncode == 0, by_setting.stderr
    assert by_setting.stdout.startswith("deleted 1 records created before ")
    assert "(retention 365 days)" in by_setting.stdout
    assert store.get_assessment("assessment-1") is None

    by_option = _cli(database_url, "purge", "--older-than-days", "3", CDS_RETENTION_DAYS="365")
    assert by_option.returncode == 0, by_option.stderr
    assert by_option.stdout.startswith("deleted 1 records")  # assessment-2, three days old
    assert store.get_assessment("assessment-2") is None
    assert store.get_assessment("assessment-3") is not None


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (("report", "--from", "last-week"), {}, "from must be an ISO date"),
        (("purge", "--older-than-days", "0"), {}, "must be at least 1"),
        (("purge",), {"CDS_RETENTION_DAYS": "forever"}, "CDS_RETENTION_DAYS must be a positive number"),
        (("report",), {"DATABASE_URL": "mysql://db/x"}, "scheme 'mysql' is not supported"),
        (("vacuum",), {}, "invalid choice"),
    ],
)
def test_bad_arguments_and_settings_exit_2_with_a_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
    environment: dict[str, str],
    message: str,
) -> None:
    # In-process (the subprocess runs above cover start-up): the same `main`, with the environment set.
    monkeypatch.setenv("DATABASE_URL", sqlite_database_url(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        status = cli.main(arguments)
    except SystemExit as exit_:  # argparse refuses bad arguments this way
        status = int(exit_.code or 0)
    assert status == 2
    assert message in capsys.readouterr().err


def test_a_database_that_cannot_be_opened_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert cli.main(["report"]) == 1
    assert "could not open the database: OperationalError" in capsys.readouterr().err
