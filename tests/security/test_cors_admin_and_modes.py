"""CORS on every CDS endpoint (preflight and errors too), auth switched off on purpose, the admin token."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.config import ConfigError
from tests.security.conftest import MovableClock
from tests.security.harness import (
    ADMIN_TOKEN,
    BASE_URL,
    CDS_PATHS,
    MAX_BODY_BYTES,
    SANDBOX_ORIGIN,
    SERVICE_PATH,
    preflight,
    security_test_app,
    settings_for_tests,
    verifier_for,
)
from tests.support.jwt_tokens import (
    SigningKey,
    TokenMinter,
    client_entry,
    write_clients_file,
)

ISS = "https://ehr.test"


@pytest.fixture
def minter(es_key: SigningKey, clock: MovableClock) -> TokenMinter:
    return TokenMinter(es_key, iss=ISS, base_url=BASE_URL, clock=clock)


@pytest.fixture
def clients_file(tmp_path: Path, es_key: SigningKey) -> Path:
    return write_clients_file(tmp_path / "clients.yaml", [client_entry(ISS, keys=[es_key])])


@pytest.fixture
def http(clients_file: Path, clock: MovableClock) -> FlaskClient:
    return security_test_app(settings_for_tests(), verifier_for(clients_file, clock)).test_client()


# --- CORS -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CDS_PATHS)
def test_preflight_is_answered_without_a_token_on_every_cds_endpoint(http: FlaskClient, path: str) -> None:
    response = preflight(http, path)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert set(response.headers["Access-Control-Allow-Headers"].lower().split(", ")) == {
        "authorization",
        "content-type",
    }
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_from_an_origin_not_configured_gets_no_cors_grant(http: FlaskClient) -> None:
    response = preflight(http, SERVICE_PATH, origin="https://evil.test")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_401_carries_cors_headers_so_the_browser_can_read_it(http: FlaskClient) -> None:
    response = http.post(SERVICE_PATH, json={}, headers={"Origin": SANDBOX_ORIGIN})

    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


def test_a_400_carries_cors_headers(http: FlaskClient, minter: TokenMinter) -> None:
    headers = {**minter.headers(SERVICE_PATH), "Origin": SANDBOX_ORIGIN, "Content-Type": "application/json"}
    response = http.post(SERVICE_PATH, data="{not json", headers=headers)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid-request"
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


def test_a_413_from_the_body_size_limit_carries_cors_headers(http: FlaskClient, minter: TokenMinter) -> None:
    headers = {**minter.headers(SERVICE_PATH), "Origin": SANDBOX_ORIGIN}
    response = http.post(SERVICE_PATH, json={"padding": "x" * MAX_BODY_BYTES}, headers=headers)

    assert response.status_code == 413
    assert response.get_json()["error"] == "payload-too-large"
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


def test_a_good_call_carries_cors_headers(http: FlaskClient, minter: TokenMinter) -> None:
    response = http.get(
        "/cds-services", headers={**minter.headers("/cds-services"), "Origin": SANDBOX_ORIGIN}
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


def test_any_origin_is_granted_when_configured_with_a_wildcard() -> None:
    http = security_test_app(settings_for_tests(auth="disabled", cors_origins=("*",)), None).test_client()

    response = http.post(SERVICE_PATH, json={}, headers={"Origin": "https://any.test"})

    assert response.headers["Access-Control-Allow-Origin"] == "https://any.test"  # echoed, so caches vary
    assert "Origin" in response.headers["Vary"]


# --- auth switched off on purpose -------------------------------------------------------------------


def test_disabled_auth_lets_calls_through_without_a_client_and_warns_once_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    http = security_test_app(settings_for_tests(auth="disabled"), None).test_client()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "DISABLED" in r.getMessage()]

    responses = [http.post(SERVICE_PATH, json={}), http.get("/cds-services")]

    assert len(warnings) == 1
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.get_json() for r in responses] == [{"iss": None}, {"iss": None}]
    assert len([r for r in caplog.records if "DISABLED" in r.getMessage()]) == 1  # not per request


def test_disabled_auth_ignores_a_verifier_it_was_given(clients_file: Path, clock: MovableClock) -> None:
    verifier = verifier_for(clients_file, clock)
    open_app = security_test_app(settings_for_tests(auth="disabled"), verifier).test_client()

    assert open_app.post(SERVICE_PATH, json={}).status_code == 200


def test_required_auth_without_a_verifier_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="CDS_CLIENTS_FILE"):
        security_test_app(settings_for_tests(auth="required"), None)


# --- admin endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {ADMIN_TOKEN}", 200),
        (f"bearer {ADMIN_TOKEN}", 200),
        (None, 401),
        (f"Bearer {ADMIN_TOKEN}x", 401),
        (f"Bearer {ADMIN_TOKEN[:-1]}", 401),
        (f"Basic {ADMIN_TOKEN}", 401),
        ("Bearer ", 401),
    ],
)
def test_admin_endpoints_need_the_admin_token(
    http: FlaskClient, authorization: str | None, status: int
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.post("/admin/purge", headers=headers)

    assert response.status_code == status
    if status == 401:
        assert response.get_json() == {"error": "unauthorized"}
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_admin_endpoints_are_absent_when_no_admin_token_is_configured() -> None:
    http = security_test_app(settings_for_tests(auth="disabled", admin_token=None), None).test_client()

    response = http.post("/admin/purge", headers={"Authorization": "Bearer anything"})

    assert response.status_code == 404
    assert response.get_json()["error"] == "not-found"


def test_a_cds_jwt_is_not_an_admin_token(http: FlaskClient, minter: TokenMinter) -> None:
    assert http.post("/admin/purge", headers=minter.headers("/admin/purge")).status_code == 401
