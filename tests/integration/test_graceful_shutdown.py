"""Shutdown and restart through real gunicorn: a SIGTERM lets the hook calls in flight finish, and each one
answered 2xx is in the audit store; a SIGHUP (gunicorn's graceful reload, new workers for old) during a
stream of calls refuses none and loses none."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLES
from tests.support.fhir_server import FhirTestServer
from tests.support.gunicorn_server import running_gunicorn
from tests.support.jwt_tokens import client_entry, new_es384_key, write_clients_file

pytestmark = pytest.mark.slow
SIGN = "/cds-services/lbp-imaging-order-sign"
ADMIN_TOKEN = "shutdown-admin-token-0123456789abcdef"
EHR_DELAY_SECONDS = 0.8  # every call waits this long on the EHR, so it is in flight when the signal comes


def _example() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / "order-sign-lumbar-mri.json").read_text())
    return body


def _record_of(example: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for value in example["prefetch"].values():
        if value and value["resourceType"] == "Bundle":
            found.extend(entry["resource"] for entry in value.get("entry", []))
        elif value:
            found.append(value)
    return found


def _fetching_call(index: int, fhir_server: str) -> dict[str, Any]:
    """The example with its Observations left to be fetched from the (slow) EHR."""
    body = _example()
    body["hookInstance"] = str(uuid.UUID(int=index + 1))
    del body["prefetch"]["observations"]
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {
        "access_token": "shutdown-test-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read",
        "subject": "lbp-imaging-cds",
    }
    return body


@pytest.fixture
def ehr() -> Iterator[FhirTestServer]:
    with FhirTestServer(_record_of(_example())) as server:
        server.knobs.delay_seconds = {"Observation": EHR_DELAY_SECONDS}
        yield server


@pytest.fixture
def settings(tmp_path: Path, ehr: FhirTestServer) -> dict[str, str]:
    clients = write_clients_file(
        tmp_path / "clients.yaml",
        [client_entry("https://ehr.shutdown.test", keys=[new_es384_key()], fhir_servers=[ehr.base_url])],
    )
    return {
        "CDS_CLIENTS_FILE": str(clients),
        "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CDS_FETCH_DEADLINE_SECONDS": "5",
    }


def _call(base_url: str, body: dict[str, Any]) -> tuple[int, str | None]:
    """(status, assessment id); status 0 when no answer came."""
    try:
        response = requests.post(base_url + SIGN, json=body, timeout=30)
    except requests.ConnectionError:
        return 0, None
    if response.status_code != 200:
        return response.status_code, None
    return 200, response.json()["cards"][0]["extension"]["lbp-imaging-cds"]["assessmentId"]


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _recorded(base_url: str, assessment_ids: list[str]) -> list[str]:
    """The ids the audit store does not hold (an empty list when every answer was recorded)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return [
        assessment_id
        for assessment_id in assessment_ids
        if requests.get(f"{base_url}/assessments/{assessment_id}", headers=headers, timeout=10).status_code
        != 200
    ]


def test_sigterm_lets_hook_calls_in_flight_finish_and_every_answer_is_recorded(
    tmp_path: Path, ehr: FhirTestServer, settings: dict[str, str]
):
    in_flight = 6  # under the 2 workers x 4 threads, so every call has been taken when the signal comes
    with running_gunicorn(tmp_path, settings) as (master, base_url):
        with ThreadPoolExecutor(in_flight) as pool:
            futures = [
                pool.submit(_call, base_url, _fetching_call(i, ehr.base_url)) for i in range(in_flight)
            ]
            _wait_for(lambda: len(ehr.requests_for("Observation")) >= in_flight, "every call to be in flight")
            master.send_signal(signal.SIGTERM)
            results = [future.result() for future in futures]
        master.wait(timeout=30)
        assert master.returncode == 0
        assert _call(base_url, _fetching_call(99, ehr.base_url)) == (0, None)  # gone: nothing half-served

    assert [status for status, _ in results] == [200] * in_flight
    ids = [assessment_id for _, assessment_id in results if assessment_id]
    assert len(set(ids)) == in_flight
    with running_gunicorn(tmp_path, settings) as (_, base_url):  # same database, a new server
        assert _recorded(base_url, ids) == []


def test_a_graceful_reload_during_a_stream_of_calls_refuses_none_and_loses_none(
    tmp_path: Path, ehr: FhirTestServer, settings: dict[str, str]
):
    ehr.knobs.delay_seconds = {"Observation": 0.2}
    calls, connections = 40, 4
    reloaded = threading.Event()

    with running_gunicorn(tmp_path, settings) as (master, base_url):

        def one(index: int) -> tuple[int, str | None]:
            if index == calls // 3 and not reloaded.is_set():
                reloaded.set()
                master.send_signal(signal.SIGHUP)  # new workers start, the old finish what they hold
            return _call(base_url, _fetching_call(index, ehr.base_url))

        with ThreadPoolExecutor(connections) as pool:
            results = list(pool.map(one, range(calls)))
        assert master.poll() is None
        assert reloaded.is_set()

        assert [status for status, _ in results] == [200] * calls
        ids = [assessment_id for _, assessment_id in results if assessment_id]
        assert len(set(ids)) == calls
        assert _recorded(base_url, ids) == []
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Hang up" in log or "Handling signal: hup" in log  # the reload did happen
