"""The service as it runs in production: gunicorn (2 workers x 4 threads) from `gunicorn.conf.py`, real
JWTs, SQLite or PostgreSQL, over loopback HTTP. What holds only across processes is tested here: a replayed
token refused by another worker, a concurrent burst that loses nothing, a restart that keeps everything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLES, REPO_ROOT
from tests.support import databases
from tests.support.jwt_tokens import TokenMinter, client_entry, new_es384_key, write_clients_file

pytestmark = pytest.mark.slow
ISS = "https://ehr.integration.test"
ADMIN_TOKEN = "integration-admin-token-0123456789"
SIGN = "/cds-services/lbp-imaging-order-sign"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningService:
    base_url: str
    minter: TokenMinter
    log_path: Path

    def post(self, path: str, body: Any, *, token: str | None = None) -> requests.Response:
        token = token or self.minter.token(path)
        return requests.post(
            self.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def admin_get(self, path: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return requests.get(self.base_url + path, headers=headers, timeout=10)


@contextmanager
def gunicorn(database_url: str, tmp_path: Path, minter_key: Any, log_name: str) -> Iterator[RunningService]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    clients_file = write_clients_file(tmp_path / "clients.yaml", [client_entry(ISS, keys=[minter_key])])
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "CDS_AUTH": "required",
        "CDS_CLIENTS_FILE": str(clients_file),
        "CDS_PUBLIC_BASE_URL": base_url,
        "DATABASE_URL": database_url,
        "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CDS_PATIENT_HASH_KEY": "integration-test-hash-key",
    }
    log_path = tmp_path / log_name
    gunicorn_bin = Path(sys.executable).with_name("gunicorn")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(gunicorn_bin), "--config", "gunicorn.conf.py", "service:create_app()"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            minter = TokenMinter(key=minter_key, iss=ISS, base_url=base_url, clock=lambda: datetime.now(UTC))
            yield RunningService(base_url=base_url, minter=minter, log_path=log_path)
        finally:
            process.terminate()
            process.wait(timeout=30)


# Each test runs once on SQLite and once on PostgreSQL (a schema of its own in this run's database).
database_url = databases.database_url
postgres_test_database = databases.postgres_test_database


def _hook_request(index: int) -> dict[str, Any]:
    """The shipped example, changed to an X-ray for low back pain without red flags: a warning card."""
    body: dict[str, Any] = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    body["hookInstance"] = f"00000000-0000-4000-8000-{index:012d}"
    conditions = body["prefetch"]["conditions"]["entry"]
    conditions[:] = [e for e in conditions if e["resource"]["id"] != "hx-breast-cancer"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"]["coding"] = [{"system": "http://www.ama-assn.org/go/cpt", "code": "72100"}]
    return body


def test_replica_set_keeps_every_assessment_refuses_replays_and_survives_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    key = new_es384_key()
    with gunicorn(database_url, tmp_path, key, "first.log") as service:
        # Discovery needs a token too.
        assert requests.get(service.base_url + "/cds-services", timeout=5).status_code == 401
        assert service.post(SIGN, _hook_request(0), token="garbage").status_code == 401

        # A captured token replayed at once from many connections: only the first call is served,
        # whichever worker each replay reaches.
        token = service.minter.token(SIGN)
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: service.post(SIGN, _hook_request(0), token=token).status_code, range(12))
            )
        assert Counter(statuses) == Counter({200: 1, 401: 11})

        # A burst of hook calls and feedback from several threads: nothing lost, nothing doubled.
        def call(index: int) -> tuple[str, str]:
            response = service.post(SIGN, _hook_request(index))
            assert response.status_code == 200, response.text
            card = response.json()["cards"][0]
            item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": "2026-11-26T10:00:00Z"}
            if index % 3 == 0:
                suggestion = card["suggestions"][0]["uuid"]
                item.update(outcome="accepted", acceptedSuggestions=[{"id": suggestion}])
            else:
                item.update(outcome="overridden")
            feedback = {"feedback": [item]}
            answer = service.post(SIGN + "/feedback", feedback)
            assert answer.status_code == 200, answer.text
            return card["extension"]["lbp-imaging-cds"]["assessmentId"], card["uuid"]

        calls = 120
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(call, range(1, calls + 1)))
        assert len({assessment for assessment, _ in results}) == calls

        report = service.admin_get("/reports/summary?from=2000-01-01&to=2100-01-01").json()
        assert report["assessments"] == calls + 1  # the burst and the one replayed call that was served
        assert report["cards"]["withFeedback"] == calls
        assert report["cards"]["accepted"] == sum(1 for index in range(1, calls + 1) if index % 3 == 0)

    # A restart (new processes, same database) keeps every record and its feedback.
    assessment_id, card_uuid = results[-1]
    with gunicorn(database_url, tmp_path, key, "second.log") as service:
        record = service.admin_get(f"/assessments/{assessment_id}")
        assert record.status_code == 200
        order = record.json()["orders"][0]
        assert order["cardUuid"] == card_uuid
        assert len(order["feedback"]) == 1
        report = service.admin_get("/reports/summary?from=2000-01-01&to=2100-01-01").json()
        assert report["assessments"] == calls + 1

    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert token not in logs
    assert "example-lbp-1" not in logs  # the patient id
    assert "1968-03-14" not in logs  # the birth date
