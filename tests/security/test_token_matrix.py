"""The token matrix (every JWT attack a CDS client could try), over HTTP against an app with init_security.

Every bad token gets a bare 401 (`{"error": "unauthorized"}`, `WWW-Authenticate: Bearer`) and its reason
in the request log line; every good one reaches the view with the verified client on `g.cds_client`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask.testing import FlaskClient

from service.security import REQUEST_LOGGER
from tests.security.conftest import MovableClock
from tests.security.harness import (
    ALT_BASE_URL,
    BASE_URL,
    LEEWAY_SECONDS,
    SERVICE_PATH,
    craft_token,
    security_test_app,
    settings_for_tests,
    verifier_for,
)
from tests.support.jwt_tokens import (
    JwksServer,
    MemoryReplayGuard,
    SigningKey,
    TokenMinter,
    bearer,
    client_entry,
    new_es384_key,
    sign,
    standard_claims,
    write_clients_file,
)

ES_ISS = "https://ehr-es.test"
RS_ISS = "https://ehr-rs.test"
REMOTE_ISS = "https://ehr-remote.test"
TENANT_ISS = "https://ehr-tenant.test"
TENANT = "hospital-main"
LEEWAY = LEEWAY_SECONDS


@dataclass
class World:
    kind: str
    http: FlaskClient
    clock: MovableClock
    jwks: JwksServer
    replay_guard: MemoryReplayGuard
    es: TokenMinter
    rs: TokenMinter
    remote: TokenMinter
    tenant: TokenMinter
    es_key: SigningKey
    rs_key: SigningKey
    stranger_key: SigningKey

    @property
    def now(self) -> int:
        return int(self.clock().timestamp())

    def claims(self, **changes: Any) -> dict[str, Any]:
        claims = standard_claims(ES_ISS, BASE_URL + SERVICE_PATH, now=self.clock())
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}


HARNESS, SERVICE = "harness", "service"


@contextmanager
def build_world(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: MovableClock,
    keys: tuple[SigningKey, SigningKey, SigningKey],
) -> Iterator[World]:
    """The same clients and tokens against the test harness app or the real app from create_app."""
    es_key, rs_key, stranger_key = keys
    remote_key = new_es384_key("remote-1")
    replay_guard = MemoryReplayGuard()
    with JwksServer(keys=[remote_key]) as jwks:
        clients_file = write_clients_file(
            tmp_path / "clients.yaml",
            [
                client_entry(ES_ISS, keys=[es_key], fhir_servers=["https://ehr-es.test/fhir"]),
                client_entry(RS_ISS, keys=[rs_key]),
                client_entry(REMOTE_ISS, jwks_url=jwks.url),
                client_entry(TENANT_ISS, keys=[es_key], tenants=[TENANT, "hospital-branch"]),
            ],
        )
        settings = settings_for_tests(jwt_leeway_seconds=LEEWAY, clients_file=str(clients_file))
        if kind == SERVICE:
            # The real app: its own verifier and the database replay guard (tests/conftest.py make_client).
            changes = {field: getattr(settings, field) for field in SERVICE_SETTINGS}
            service_app = request.getfixturevalue("make_client")(**changes).application
            # A plain client: these tests are about who gets in; the contract tests judge the bodies.
            service_app.test_client_class = None
            http = service_app.test_client()
        else:
            verifier = verifier_for(clients_file, clock, replay_guard, jwks_refresh_cooldown_seconds=0)
            http = security_test_app(settings, verifier).test_client()

        def minter(key: SigningKey, iss: str, jku: str | None = None) -> TokenMinter:
            return TokenMinter(key, iss=iss, base_url=BASE_URL, clock=clock, jku=jku)

        yield World(
            kind=kind,
            http=http,
            clock=clock,
            jwks=jwks,
            replay_guard=replay_guard,
            es=minter(es_key, ES_ISS),
            rs=minter(rs_key, RS_ISS),
            remote=minter(remote_key, REMOTE_ISS, jku=jwks.url),
            tenant=minter(es_key, TENANT_ISS),
            es_key=es_key,
            rs_key=rs_key,
            stranger_key=stranger_key,
        )


SERVICE_SETTINGS = (
    "auth",
    "clients_file",
    "public_base_urls",
    "cors_origins",
    "admin_token",
    "jwt_leeway_seconds",
)


@pytest.fixture(params=[HARNESS, SERVICE])
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: MovableClock,
    es_key: SigningKey,
    rs_key: SigningKey,
    stranger_key: SigningKey,
) -> Iterator[World]:
    """Parametrized: the harness app (init_security alone) and the service from create_app. Tests of
    the in-memory replay guard pick the harness: `parametrize("world", [HARNESS], indirect=True)`."""
    with build_world(request.param, request, tmp_path, clock, (es_key, rs_key, stranger_key)) as built:
        yield built


def call(world: World, headers: dict[str, str], path: str = SERVICE_PATH) -> Any:
    return world.http.post(
        path, json={"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"}, headers=headers
    )


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == REQUEST_LOGGER]


def passed_as(caplog: pytest.LogCaptureFixture) -> str | None:
    """The verified `iss` on the last request line: who the guard let in."""
    issuer: str | None = vars(request_lines(caplog)[-1]).get("iss")
    return issuer


# --- good tokens --------------------------------------------------------------------------------------

HeaderMaker = Callable[[World], dict[str, str]]

GOOD: list[tuple[str, HeaderMaker, str, str | None]] = [
    ("valid ES384", lambda w: w.es.headers(SERVICE_PATH), ES_ISS, None),
    ("valid RS384", lambda w: w.rs.headers(SERVICE_PATH), RS_ISS, None),
    (
        "ES384 key from a JWKS URL, jku equal to it",
        lambda w: w.remote.headers(SERVICE_PATH),
        REMOTE_ISS,
        None,
    ),
    (
        "JWKS URL client without jku",
        lambda w: bearer(w.remote.token(SERVICE_PATH, headers={"jku": None})),
        REMOTE_ISS,
        None,
    ),
    (
        "aud as an array holding the endpoint URL",
        lambda w: w.es.headers(SERVICE_PATH, aud=["https://other.test/x", BASE_URL + SERVICE_PATH]),
        ES_ISS,
        None,
    ),
    (
        "aud built from the second public base URL",
        lambda w: w.es.headers(SERVICE_PATH, aud=ALT_BASE_URL + SERVICE_PATH),
        ES_ISS,
        None,
    ),
    (
        "extra claims as Epic sends (sub, nbf)",
        lambda w: w.es.headers(SERVICE_PATH, sub="x", nbf=w.now),
        ES_ISS,
        None,
    ),
    (
        "tenant listed for the client",
        lambda w: w.tenant.headers(SERVICE_PATH, tenant=TENANT),
        TENANT_ISS,
        TENANT,
    ),
    (
        "tenant sent by a client without a tenant list",
        lambda w: w.es.headers(SERVICE_PATH, tenant="t"),
        ES_ISS,
        "t",
    ),
    (
        "expired 59 s ago: within the leeway",
        lambda w: w.es.headers(SERVICE_PATH, iat=w.now - 400, exp=w.now - LEEWAY + 1),
        ES_ISS,
        None,
    ),
    (
        "issued 59 s in the future: within the leeway (clock skew)",
        lambda w: w.es.headers(SERVICE_PATH, iat=w.now + LEEWAY - 1, exp=w.now + 400),
        ES_ISS,
        None,
    ),
    (
        "lifetime of an hour (the most accepted)",
        lambda w: w.es.headers(SERVICE_PATH, lifetime_seconds=3600),
        ES_ISS,
        None,
    ),
    (
        "typ header in lower case",
        lambda w: bearer(w.es.token(SERVICE_PATH, headers={"typ": "jwt"})),
        ES_ISS,
        None,
    ),
    (
        "pinned keys and a jku as the Sandbox sends (never fetched)",
        lambda w: bearer(
            w.es.token(SERVICE_PATH, headers={"jku": "https://sandbox.cds-hooks.org/.well-known/jwks.json"})
        ),
        ES_ISS,
        None,
    ),
    ("no typ header", lambda w: bearer(w.es.token(SERVICE_PATH, headers={"typ": None})), ES_ISS, None),
    (
        "lower-case bearer scheme",
        lambda w: {"Authorization": f"bearer {w.es.token(SERVICE_PATH)}"},
        ES_ISS,
        None,
    ),
]


@pytest.mark.parametrize(
    ("make_headers", "iss", "tenant"), [case[1:] for case in GOOD], ids=[case[0] for case in GOOD]
)
def test_good_tokens_pass_with_the_verified_client(
    world: World,
    caplog: pytest.LogCaptureFixture,
    make_headers: HeaderMaker,
    iss: str,
    tenant: str | None,
) -> None:
    headers = make_headers(world)
    caplog.set_level(logging.INFO)

    response = call(world, headers)

    assert response.status_code != 401, vars(request_lines(caplog)[-1]).get("auth_failure")
    assert passed_as(caplog) == iss
    if world.kind == HARNESS:  # the harness view echoes g.cds_client; the service has no such view
        assert response.status_code == 200
        assert response.get_json() == {"iss": iss, "tenant": tenant}


# --- bad tokens ---------------------------------------------------------------------------------------


def _b64_swap_payload(token: str, other: str) -> str:
    header, _, signature = token.split(".")
    return ".".join([header, other.split(".")[1], signature])


def _hs384_with_public_key(world: World) -> dict[str, str]:
    # The classic key-confusion attack: HMAC keyed with the published public key.
    public_pem = world.rs_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS384", "typ": "JWT", "kid": world.rs_key.kid}
    token = craft_token(
        header, world.claims(iss=RS_ISS), lambda data: hmac.new(public_pem, data, hashlib.sha384).digest()
    )
    return bearer(token)


def _rs384_signature_labelled_es384(world: World) -> dict[str, str]:
    private_key = world.rs_key.private_key
    assert isinstance(private_key, rsa.RSAPrivateKey)
    header = {"alg": "ES384", "typ": "JWT", "kid": world.rs_key.kid}
    token = craft_token(
        header,
        world.claims(iss=RS_ISS),
        lambda data: private_key.sign(data, padding.PKCS1v15(), hashes.SHA384()),
    )
    return bearer(token)


def _replayed(world: World) -> dict[str, str]:
    headers = world.es.headers(SERVICE_PATH)
    assert call(world, headers).status_code != 401  # the first use is fine
    return headers


BAD: list[tuple[str, HeaderMaker, str]] = [
    ("no Authorization header", lambda w: {}, "no Authorization header"),
    ("not a bearer credential", lambda w: {"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer <token>'"),
    ("empty bearer", lambda w: {"Authorization": "Bearer "}, "not 'Bearer <token>'"),
    ("garbage", lambda w: bearer("this-is.not-a.jwt"), "not a well-formed JWS"),
    ("oversized token", lambda w: bearer("a" * 20_000), "longer than"),
    (
        "expired (61 s ago, beyond the leeway)",
        lambda w: w.es.headers(SERVICE_PATH, iat=w.now - 400, exp=w.now - LEEWAY - 1),
        "token expired",
    ),
    (
        "not yet valid: iat 61 s in the future",
        lambda w: w.es.headers(SERVICE_PATH, iat=w.now + LEEWAY + 1, exp=w.now + 400),
        "iat is in the future",
    ),
    (
        "not yet valid: nbf in the future",
        lambda w: w.es.headers(SERVICE_PATH, nbf=w.now + LEEWAY + 1),
        "not yet valid (nbf)",
    ),
    (
        "exp before iat",
        lambda w: w.es.headers(SERVICE_PATH, iat=w.now + 30, exp=w.now + 10),
        "exp is before iat",
    ),
    (
        "a lifetime beyond an hour (plus the leeway)",
        lambda w: w.es.headers(SERVICE_PATH, exp=w.now + 3600 + LEEWAY + 1),
        "exp is more than 3600 s away",
    ),
    (
        "typ of another kind of JWT",
        lambda w: bearer(w.es.token(SERVICE_PATH, headers={"typ": "at+jwt"})),
        "typ 'at+jwt' is not JWT",
    ),
    ("exp not a number", lambda w: w.es.headers(SERVICE_PATH, exp="9999999999"), "exp is not a NumericDate"),
    ("exp missing", lambda w: w.es.headers(SERVICE_PATH, exp=None), "claim exp is missing"),
    ("iat missing", lambda w: w.es.headers(SERVICE_PATH, iat=None), "claim iat is missing"),
    (
        "wrong aud: another service",
        lambda w: w.es.headers(SERVICE_PATH, aud=BASE_URL + "/cds-services/other"),
        "aud is not the URL",
    ),
    (
        "wrong aud: another host",
        lambda w: w.es.headers(SERVICE_PATH, aud="https://evil.test" + SERVICE_PATH),
        "aud is not the URL",
    ),
    (
        "wrong aud: the base URL only",
        lambda w: w.es.headers(SERVICE_PATH, aud=BASE_URL),
        "aud is not the URL",
    ),
    ("aud missing", lambda w: w.es.headers(SERVICE_PATH, aud=None), "claim aud is missing"),
    (
        "unknown iss",
        lambda w: bearer(sign(w.es_key, w.claims(iss="https://unknown.test"))),
        "'https://unknown.test' is not an allowed client",
    ),
    (
        "iss missing",
        lambda w: bearer(sign(w.es_key, w.claims(iss=None))),
        "iss None is not an allowed client",
    ),
    (
        "iss with a trailing slash the allowlist lacks",
        lambda w: bearer(sign(w.es_key, w.claims(iss=ES_ISS + "/"))),
        "is not an allowed client",
    ),
    (
        "jku pointing elsewhere",
        lambda w: bearer(w.remote.token(SERVICE_PATH, headers={"jku": "https://evil.test/jwks.json"})),
        "jku 'https://evil.test/jwks.json' is not the JWKS URL",
    ),
    (
        "unknown kid (inline key set)",
        lambda w: bearer(sign(w.es_key, w.claims(), headers={"kid": "no-such-kid"})),
        "kid 'no-such-kid' is not in the JWK Set",
    ),
    (
        "unknown kid (JWKS URL, even after a refresh)",
        lambda w: bearer(w.remote.token(SERVICE_PATH, headers={"kid": "no-such-kid"})),
        "kid 'no-such-kid' is not in the JWK Set",
    ),
    ("no kid", lambda w: bearer(sign(w.es_key, w.claims(), headers={"kid": None})), "header has no kid"),
    ("missing jti", lambda w: w.es.headers(SERVICE_PATH, jti=None), "claim jti is missing"),
    ("jti not a string", lambda w: w.es.headers(SERVICE_PATH, jti=12345), "token refused: InvalidJTIError"),
    ("jti too long", lambda w: w.es.headers(SERVICE_PATH, jti="j" * 256), "jti must be a string of 1 to 255"),
    ("replayed jti", _replayed, "jti already used (replay)"),
    (
        "alg none",
        lambda w: bearer(
            craft_token({"alg": "none", "typ": "JWT", "kid": w.es_key.kid}, w.claims(), lambda _: b"")
        ),
        "alg 'none' is not allowed",
    ),
    ("HS384 signed with the public key", _hs384_with_public_key, "alg 'HS384' is not allowed"),
    (
        "RS256 (not on the list)",
        lambda w: bearer(
            sign(
                SigningKey(w.rs_key.kid, "RS256", w.rs_key.private_key),
                w.claims(iss=RS_ISS),
            )
        ),
        "alg 'RS256' is not allowed",
    ),
    ("an RSA signature labelled ES384", _rs384_signature_labelled_es384, "is not a valid ES384 key"),
    (
        "a key not in the JWKS (signed by a stranger under a trusted kid)",
        lambda w: bearer(sign(SigningKey(w.es_key.kid, "ES384", w.stranger_key.private_key), w.claims())),
        "signature does not verify",
    ),
    (
        "payload swapped under a valid signature",
        lambda w: bearer(
            _b64_swap_payload(sign(w.es_key, w.claims()), sign(w.es_key, w.claims(sub="admin")))
        ),
        "signature does not verify",
    ),
    (
        "tenant missing for a client that lists tenants",
        lambda w: w.tenant.headers(SERVICE_PATH),
        "tenant None is not allowed",
    ),
    (
        "tenant not listed for the client",
        lambda w: w.tenant.headers(SERVICE_PATH, tenant="other-hospital"),
        "tenant 'other-hospital' is not allowed",
    ),
    ("tenant not a string", lambda w: w.tenant.headers(SERVICE_PATH, tenant=["x"]), "tenant is not a string"),
]


@pytest.mark.parametrize(
    ("make_headers", "reason"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_tokens_get_a_bare_401_and_the_reason_goes_to_the_log(
    world: World, caplog: pytest.LogCaptureFixture, make_headers: HeaderMaker, reason: str
) -> None:
    headers = make_headers(world)
    caplog.clear()
    caplog.set_level(logging.INFO)

    response = call(world, headers)

    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    [line] = [vars(record) for record in request_lines(caplog)]
    assert reason in line["auth_failure"]
    assert line["status"] == 401
    token = headers.get("Authorization", "").partition(" ")[2]
    if len(token) > 20:
        assert all(token not in record.getMessage() + str(vars(record)) for record in caplog.records)


def test_the_same_token_is_refused_on_another_endpoint(world: World) -> None:
    headers = world.es.headers("/cds-services")

    assert world.http.get("/cds-services", headers=headers).status_code == 200
    assert world.http.post("/evaluate", json={}, headers=world.es.headers("/cds-services")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services"),
        ("POST", SERVICE_PATH),
        ("POST", SERVICE_PATH + "/feedback"),
        ("POST", "/evaluate"),
    ],
)
def test_every_cds_endpoint_requires_a_token_for_its_own_url(
    world: World, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.INFO)
    body: dict[str, Any] | None = None if method == "GET" else {}

    without = world.http.open(path, method=method, json=body)
    with_token = world.http.open(path, method=method, json=body, headers=world.es.headers(path))

    assert without.status_code == 401
    assert with_token.status_code != 401  # the service then answers 400 to an empty body
    assert passed_as(caplog) == ES_ISS


def test_unknown_service_ids_get_401_before_404_so_nothing_is_revealed(world: World) -> None:
    assert world.http.post("/cds-services/no-such-service", json={}).status_code == 401
    assert world.http.post("/cds-services/no-such-service/feedback", json={}).status_code == 401
    assert world.http.get("/healthz").status_code == 200  # health stays open


def test_unrouted_paths_are_a_plain_404(world: World) -> None:
    assert world.http.post("/cds-services/a/b/c", json={}).status_code == 404


def test_a_refused_token_does_not_use_up_its_jti(world: World) -> None:
    token_claims = {"jti": "one-jti"}
    assert call(world, world.es.headers(SERVICE_PATH, aud=BASE_URL, **token_claims)).status_code == 401
    assert call(world, world.es.headers(SERVICE_PATH, **token_claims)).status_code != 401


@pytest.mark.parametrize("world", [HARNESS], indirect=True)
def test_a_replay_is_refused_by_another_worker_sharing_the_replay_guard(world: World, tmp_path: Path) -> None:
    """Two apps (two workers) with their own verifiers but one guard: the second sees the replay.
    (The same against the database guard: test_app_security.py.)"""
    headers = world.es.headers(SERVICE_PATH)
    other_worker = security_test_app(
        settings_for_tests(),
        verifier_for(tmp_path / "clients.yaml", world.clock, world.replay_guard),
    ).test_client()

    assert call(world, headers).status_code == 200
    assert other_worker.post(SERVICE_PATH, json={}, headers=headers).status_code == 401


@pytest.mark.parametrize("world", [HARNESS], indirect=True)
def test_the_replay_guard_keeps_the_jti_until_the_token_expires_plus_leeway(world: World) -> None:
    assert call(world, world.es.headers(SERVICE_PATH, jti="kept", lifetime_seconds=300)).status_code == 200

    kept_until = world.replay_guard.seen[(ES_ISS, "kept")]
    assert kept_until == world.clock() + timedelta(seconds=300 + LEEWAY)
