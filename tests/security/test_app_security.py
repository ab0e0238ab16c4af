"""The real service (create_app, CDS_AUTH=required) on SQLite and PostgreSQL: replays across workers,
CORS on its error answers, and the log of a whole run of good and bad calls holding no token and no PHI."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.config import ConfigError
from service.security import ClientsFileError, JsonLinesFormatter
from tests.security.conftest import MovableClock
from tests.security.harness import ALT_BASE_URL, BASE_URL, CDS_PATHS, SANDBOX_ORIGIN, SERVICE_PATH, preflight
from tests.support import databases
from tests.support.fhir_server import FhirTestServer
from tests.support.jwt_tokens import SigningKey, TokenMinter, bearer, client_entry, write_clients_file

database_url = databases.database_url  # every test here runs on SQLite and on PostgreSQL
postgres_test_database = databases.postgres_test_database

REPO_ROOT = Path(__file__).resolve().parents[2]
ISS = "https://ehr.example.test"
FEEDBACK_PATH = SERVICE_PATH + "/feedback"
MAX_BODY_BYTES = 256 * 1024

# Identifying details planted in the requests: none may reach a log line.
PATIENT_ID = "zq-patient-55781"
FAMILY, GIVEN = "Quixotic-Marchetti", "Zebulon"
BIRTH_DATE = "1957-09-23"
MRN = "MRN-4471-9083-22"
FHIR_ACCESS_TOKEN = "fhir-access-token-3f9a1c77e2b04d"
PHI = (PATIENT_ID, FAMILY, GIVEN, BIRTH_DATE, MRN)

MakeClient = Callable[..., FlaskClient]


def plain_client(make_client: MakeClient, **changes: Any) -> FlaskClient:
    app = make_client(**changes).application
    app.test_client_class = None  # these tests judge access and logs; the contract tests judge bodies
    return app.test_client()


@pytest.fixture
def secured(
    make_client: MakeClient, tmp_path: Path, es_key: SigningKey, clock: MovableClock
) -> Callable[..., FlaskClient]:
    """A factory of service apps with auth required; each call is another worker on the same database."""

    def build(fhir_servers: tuple[str, ...] = (), **changes: Any) -> FlaskClient:
        clients_file = write_clients_file(
            tmp_path / "clients.yaml", [client_entry(ISS, keys=[es_key], fhir_servers=fhir_servers)]
        )
        settings: dict[str, Any] = {
            "auth": "required",
            "clients_file": str(clients_file),
            "public_base_urls": (BASE_URL, ALT_BASE_URL),
            "cors_origins": (SANDBOX_ORIGIN,),
            "max_body_bytes": MAX_BODY_BYTES,
        }
        return plain_client(make_client, **(settings | changes))

    return build


@pytest.fixture
def minter(es_key: SigningKey, clock: MovableClock) -> TokenMinter:
    return TokenMinter(es_key, iss=ISS, base_url=BASE_URL, clock=clock)


# --- start-up ---------------------------------------------------------------------------------------


def test_auth_required_without_a_clients_file_refuses_to_start(make_client: MakeClient) -> None:
    with pytest.raises(ConfigError, match="CDS_CLIENTS_FILE"):
        make_client(auth="required", clients_file=None)


def test_a_broken_clients_file_stops_start_up_naming_the_field(
    make_client: MakeClient, tmp_path: Path
) -> None:
    broken = tmp_path / "clients.yaml"
    broken.write_text("clients:\n  - iss: https://ehr.test\n    fhir_servers: []\n")

    with pytest.raises(ClientsFileError, match=r"clients\[0\]\.jwks_url or jwks"):
        make_client(auth="required", clients_file=str(broken))


def test_auth_disabled_is_announced_at_start_up(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = plain_client(make_client, auth="disabled")

    assert client.get("/cds-services").status_code == 200
    assert [r.name for r in caplog.records if "DISABLED" in r.getMessage()] == ["lbp.security"]


# --- replays across workers -------------------------------------------------------------------------


def test_a_replayed_token_is_refused_by_another_worker_on_the_same_database(
    secured: Callable[..., FlaskClient], minter: TokenMinter
) -> None:
    worker_a, worker_b = secured(), secured()
    headers = minter.headers("/cds-services")

    assert worker_a.get("/cds-services", headers=headers).status_code == 200
    assert worker_b.get("/cds-services", headers=headers).status_code == 401
    assert worker_a.get("/cds-services", headers=headers).status_code == 401
    assert worker_b.get("/cds-services", headers=minter.headers("/cds-services")).status_code == 200


# --- CORS on the service's own answers ----------------------------------------------------------------


@pytest.mark.parametrize("path", CDS_PATHS)
def test_preflight_on_every_cds_endpoint(secured: Callable[..., FlaskClient], path: str) -> None:
    response = preflight(secured(), path)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_401_400_and_413_from_the_service_carry_cors_headers(
    secured: Callable[..., FlaskClient], minter: TokenMinter
) -> None:
    client = secured()
    origin = {"Origin": SANDBOX_ORIGIN}

    unauthorized = client.post(SERVICE_PATH, json={}, headers=origin)
    invalid = client.post(
        SERVICE_PATH,
        data="{",
        headers=origin | minter.headers(SERVICE_PATH) | {"Content-Type": "application/json"},
    )
    too_large = client.post(
        SERVICE_PATH, json={"x": "y" * MAX_BODY_BYTES}, headers=origin | minter.headers(SERVICE_PATH)
    )

    assert [unauthorized.status_code, invalid.status_code, too_large.status_code] == [401, 400, 413]
    assert unauthorized.get_json() == {"error": "unauthorized"}
    for response in (unauthorized, invalid, too_large):
        assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


# --- the log of a whole run ---------------------------------------------------------------------------


@pytest.fixture
def formatted_log() -> Iterator[io.StringIO]:
    """Every record of the run as the service writes it: JSON lines through the real formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def _with_planted_phi(example: str) -> Any:
    text = (REPO_ROOT / "examples" / example).read_text()
    text = text.replace("example-lbp-1", PATIENT_ID).replace('"Demo"', f'"{FAMILY}"')
    text = text.replace('"Alex"', f'"{GIVEN}"').replace("1968-03-14", BIRTH_DATE)
    document = json.loads(text)
    patients = [
        entry["resource"]
        for entry in document.get("entry", [])
        if entry["resource"]["resourceType"] == "Patient"
    ]
    patients += [document["prefetch"]["patient"]] if "prefetch" in document else []
    for patient in patients:
        patient["identifier"] = [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": MRN}]
    return document


def test_a_full_run_of_good_and_bad_calls_logs_no_token_and_no_patient_detail(
    secured: Callable[..., FlaskClient],
    minter: TokenMinter,
    formatted_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook_request = _with_planted_phi("order-sign-lumbar-mri.json")
    therapy = {
        "resourceType": "ServiceRequest",
        "id": "pt-1",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"text": f"Physical therapy for {GIVEN} {FAMILY}"},
    }
    with FhirTestServer([therapy]) as fhir:
        client = secured(fhir_servers=(fhir.base_url,), log_level="DEBUG")
        # Missing from prefetch, so the service fetches it with the client's FHIR access token.
        hook_request["prefetch"].pop("therapyRequests", None)
        hook_request["fhirServer"] = fhir.base_url
        hook_request["fhirAuthorization"] = {
            "access_token": FHIR_ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
        tokens: list[str] = []

        def auth(path: str, **claims: Any) -> dict[str, str]:
            tokens.append(minter.token(path, **claims))
            return bearer(tokens[-1])

        signed = auth(SERVICE_PATH)
        statuses = {
            "discovery": client.get("/cds-services", headers=auth("/cds-services")).status_code,
            "order-sign": client.post(SERVICE_PATH, json=hook_request, headers=signed).status_code,
            "replay": client.post(SERVICE_PATH, json=hook_request, headers=signed).status_code,
            "expired": client.post(
                SERVICE_PATH,
                json=hook_request,
                headers=auth(SERVICE_PATH, exp=minter.clock().timestamp() - 3600),
            ).status_code,
            "no token": client.post(SERVICE_PATH, json=hook_request).status_code,
            "evaluate": client.post(
                "/evaluate", json=_with_planted_phi("evaluate-bundle.json"), headers=auth("/evaluate")
            ).status_code,
            "invalid json": client.post(
                SERVICE_PATH,
                data=json.dumps(hook_request)[:-40],
                headers=auth(SERVICE_PATH) | {"Content-Type": "application/json"},
            ).status_code,
            "invalid birth date": client.post(
                SERVICE_PATH,
                json=_invalid_birth_date(hook_request),
                headers=auth(SERVICE_PATH),
            ).status_code,
            "too large": client.post(
                SERVICE_PATH,
                json=hook_request | {"padding": GIVEN * MAX_BODY_BYTES},
                headers=auth(SERVICE_PATH),
            ).status_code,
            "query string": client.post(
                f"{SERVICE_PATH}?patient={PATIENT_ID}&name={FAMILY}",
                json=hook_request,
                headers=auth(SERVICE_PATH),
            ).status_code,
            "feedback": client.post(
                FEEDBACK_PATH,
                json={
                    "feedback": [
                        {
                            "card": "00000000-0000-0000-0000-000000000001",
                            "outcome": "overridden",
                            "overrideReason": {"userComment": f"{GIVEN} {FAMILY} declined ({MRN})"},
                            "outcomeTimestamp": "2026-11-26T12:00:00Z",
                        }
                    ]
                },
                headers=auth(FEEDBACK_PATH),
            ).status_code,
            "unrouted": client.get(
                f"/Patient/{PATIENT_ID}", headers=auth(f"/Patient/{PATIENT_ID}")
            ).status_code,
        }
        fetched = [request for request in fhir.received if request.path.endswith("/ServiceRequest")]

    lines = [json.loads(line) for line in formatted_log.getvalue().splitlines()]
    written = formatted_log.getvalue() + capsys.readouterr().err
    request_lines = [line for line in lines if line["logger"] == "lbp.request"]
    assert [line["status"] for line in request_lines] == list(statuses.values())  # one line per request
    for secret in (*tokens, FHIR_ACCESS_TOKEN, *PHI):
        assert secret not in written, f"{secret!r} reached the log"
    # Then the run itself went as expected (else the log above proves less than it seems).
    assert statuses.pop("invalid birth date") in (200, 400)  # either way, nothing of it is logged
    assert statuses == {
        "discovery": 200,
        "order-sign": 200,
        "replay": 401,
        "expired": 401,
        "no token": 401,
        "evaluate": 200,
        "invalid json": 400,
        "too large": 413,
        "query string": 200,
        "feedback": 200,
        "unrouted": 404,
    }
    assert fetched, "the run should include a real fetch with the FHIR access token"
    assert fetched[0].headers["authorization"] == f"Bearer {FHIR_ACCESS_TOKEN}"


def _invalid_birth_date(hook_request: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(hook_request))
    changed["prefetch"]["patient"]["birthDate"] = f"{BIRTH_DATE}T99:99"
    return changed
