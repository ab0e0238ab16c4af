"""The compose demo's seeder against a FHIR server on loopback, and the demo path then fetching from it:
what the page does not prefetch, the service fetches from that server for real."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.demo.patients import load_index
from service.demo.seed import seed
from tests.conftest import REPO_ROOT
from tests.demo.conftest import card_facts, draft_order, hook_call, json_of
from tests.support.fhir_server import FhirTestServer
from tests.support.gunicorn_server import free_port
from tests.support.jwt_tokens import client_entry, new_es384_key, write_clients_file

INDEX = load_index()


@pytest.fixture
def hapi() -> Iterator[FhirTestServer]:
    with FhirTestServer() as server:
        yield server


def test_the_seeder_loads_every_sample_bundle_as_a_transaction(hapi: FhirTestServer, clock: Any):
    loaded = seed(hapi.base_url, today=clock.now.date(), wait_seconds=5)

    posts = [r for r in hapi.received if r.method == "POST"]
    assert len(posts) == len(INDEX["patients"])
    assert {r.headers["content-type"] for r in posts} == {"application/fhir+json"}
    for patient in INDEX["patients"]:
        assert hapi.read("Patient", patient["id"]) is not None
    assert loaded == sum(
        len(hapi.search(t, {})) for t in ("Patient", "Condition", "Observation", "Procedure")
    ) + sum(len(hapi.search(t, {})) for t in ("MedicationRequest", "MedicationStatement"))
    assert seed(hapi.base_url, today=clock.now.date()) == loaded  # PUT by id: seeding again adds nothing


def test_the_seeder_command_waits_for_the_server_and_says_what_it_did(hapi: FhirTestServer):
    done = subprocess.run(
        [sys.executable, "-m", "service.demo.seed", "--fhir-server", hapi.base_url, "--wait-seconds", "5"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"into {hapi.base_url}" in done.stdout
    assert hapi.received[0].path.endswith("/metadata")


def test_the_seeder_fails_clearly_when_the_server_never_comes_up():
    url = f"http://127.0.0.1:{free_port()}/fhir"
    done = subprocess.run(
        [sys.executable, "-m", "service.demo.seed", "--fhir-server", url, "--wait-seconds", "0.5"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "did not answer a CapabilityStatement in time" in done.stderr


@pytest.fixture
def demo_on_hapi(
    make_client: Callable[..., FlaskClient], hapi: FhirTestServer, tmp_path: Path, clock: Any
) -> FlaskClient:
    seed(hapi.base_url, today=clock.now.date())
    clients = write_clients_file(
        tmp_path / "clients.demo.yaml",
        [client_entry("https://demo.local", keys=[new_es384_key()], fhir_servers=[hapi.base_url])],
    )
    return make_client(demo=True, demo_fhir_server=hapi.base_url, clients_file=str(clients))


def test_the_page_prefetches_only_the_patient_and_names_the_server(demo_on_hapi: FlaskClient, hapi):
    config = json_of(demo_on_hapi.get("/demo/api/config"))
    assert config["fhirServer"] == hapi.base_url
    assert config["prefetchKeys"] == ["patient"]
    patient = json_of(demo_on_hapi.get("/demo/fhir/Patient/demo-fever"))
    assert patient["id"] == "demo-fever"
    assert hapi.requests_for("Patient")[-1].method == "GET"  # read through, from the FHIR server


@pytest.mark.parametrize(
    "patient",
    [pytest.param(p, id=p["id"]) for p in INDEX["patients"] if p["id"] != "demo-no-observations"][:6],
)
def test_cards_hold_when_the_service_fetches_the_record_from_the_fhir_server(
    demo_on_hapi: FlaskClient, hapi: FhirTestServer, patient: dict[str, Any]
):
    order = patient["orders"][0]
    draft = draft_order(demo_on_hapi, patient["id"], order["procedure"])
    hapi.received.clear()

    answer = hook_call(
        demo_on_hapi,
        "order-sign",
        patient["id"],
        [draft],
        prefetch_keys=["patient"],
        fhir_server=hapi.base_url,
    )

    fetched = {r.path.rsplit("/", 1)[-1] for r in hapi.received if r.headers.get("authorization")}
    assert {"Condition", "Observation", "Procedure", "MedicationRequest"} <= fetched
    assert {r.headers["authorization"] for r in hapi.received if r.headers.get("authorization")} == {
        "Bearer demo-access-token"
    }
    expected = {"suggests": None, "redFlags": [], **order["expect"]}
    expected["redFlags"] = sorted(expected["redFlags"])
    assert card_facts(answer["cards"][0]) == expected
