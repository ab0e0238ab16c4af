"""JwtVerifier without Flask: the spec's own test vector, JWKS fetching, caching and key rotation."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jwt.warnings import InsecureKeyLengthWarning

from service.security import AuthenticationError, ClientRegistry, JwtVerifier
from tests.security.conftest import MovableClock
from tests.support.jwt_tokens import (
    JwksServer,
    MemoryReplayGuard,
    SigningKey,
    TokenMinter,
    client_entry,
    key_from_private_jwk,
    new_es384_key,
    new_rs384_key,
    sign,
    write_clients_file,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "reference-examples"
REMOTE_ISS = "https://ehr-remote.test"
BASE_URL = "https://cds.example.test"
PATH = "/cds-services/lbp-imaging-order-select"


def _example(block: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / f"spec201_block{block}.json").read_text())
    return document


def _verifier(registry: ClientRegistry, clock: MovableClock, **options: Any) -> JwtVerifier:
    settings: dict[str, Any] = {
        "audiences": (BASE_URL,),
        "leeway_seconds": 60,
        "jwks_timeout_seconds": 2,
        "clock": clock,
        "jwks_refresh_cooldown_seconds": 0,
    }
    settings.update(options)
    return JwtVerifier(registry, MemoryReplayGuard(), **settings)


# --- The CDS Hooks 2.0.1 specification's example JWT -----------------------------------------------


@pytest.fixture
def spec_token() -> str:
    """Blocks 21 (header) and 22 (payload) signed with block 24 (the spec's private key).

    ES384 signatures are randomized, so the spec's exact token string cannot be reproduced; this is
    the same header and claims under the same key, which is what the spec's example demonstrates."""
    header = _example(21)
    key = key_from_private_jwk(_example(24))
    return sign(key, _example(22), headers={"jku": header["jku"], "typ": header["typ"], "kid": header["kid"]})


@pytest.fixture
def spec_registry(tmp_path: Path) -> ClientRegistry:
    claims = _example(22)
    entry = {"iss": claims["iss"], "jwks": _example(23), "fhir_servers": [], "tenants": [claims["tenant"]]}
    return ClientRegistry.load(write_clients_file(tmp_path / "clients.yaml", [entry]))


def test_the_spec_example_jwt_verifies_against_the_spec_key_while_it_was_valid(
    spec_token: str, spec_registry: ClientRegistry
) -> None:
    claims = _example(22)
    during_its_lifetime = MovableClock(datetime.fromtimestamp(claims["exp"] - 3600, UTC))
    verifier = _verifier(spec_registry, during_its_lifetime, audiences=("https://cds.example.org",))

    caller = verifier.verify(f"Bearer {spec_token}", "/cds-services/some-service")

    assert caller.iss == "https://fhir-ehr.example.com/"
    assert caller.tenant == "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"
    assert _example(21)["alg"] == "ES384"


def test_the_spec_example_jwt_is_refused_today_as_expired(
    spec_token: str, spec_registry: ClientRegistry, clock: MovableClock
) -> None:
    verifier = _verifier(spec_registry, clock, audiences=("https://cds.example.org",))

    with pytest.raises(AuthenticationError, match="token expired"):
        verifier.verify(f"Bearer {spec_token}", "/cds-services/some-service")


def test_the_spec_example_jwt_is_refused_when_signed_by_another_key(
    spec_registry: ClientRegistry, stranger_key: SigningKey
) -> None:
    claims = _example(22)
    during_its_lifetime = MovableClock(datetime.fromtimestamp(claims["exp"] - 3600, UTC))
    forged = sign(SigningKey("example-kid", "ES384", stranger_key.private_key), claims)
    verifier = _verifier(spec_registry, during_its_lifetime, audiences=("https://cds.example.org",))

    with pytest.raises(AuthenticationError, match="signature does not verify"):
        verifier.verify(f"Bearer {forged}", "/cds-services/some-service")


# --- Keys from a JWKS URL ------------------------------------------------------------------------------


def _remote_registry(tmp_path: Path, jwks_url: str) -> ClientRegistry:
    return ClientRegistry.load(
        write_clients_file(tmp_path / "c.yaml", [client_entry(REMOTE_ISS, jwks_url=jwks_url)])
    )


def _minter(key: SigningKey, clock: MovableClock, jku: str | None = None) -> TokenMinter:
    return TokenMinter(key, iss=REMOTE_ISS, base_url=BASE_URL, clock=clock, jku=jku)


def test_the_key_set_is_fetched_once_and_cached(tmp_path: Path, clock: MovableClock) -> None:
    key = new_es384_key()
    with JwksServer(keys=[key]) as server:
        verifier = _verifier(_remote_registry(tmp_path, server.url), clock)

        for _ in range(3):
            verifier.verify(f"Bearer {_minter(key, clock).token(PATH)}", PATH)

        assert server.fetches == 1


def test_a_rotated_key_is_picked_up_by_refreshing_on_an_unknown_kid(
    tmp_path: Path, clock: MovableClock
) -> None:
    old_key, new_key = new_es384_key("2026-old"), new_rs384_key("2026-new")
    with JwksServer(keys=[old_key]) as server:
        verifier = _verifier(_remote_registry(tmp_path, server.url), clock)
        assert (
            verifier.verify(f"Bearer {_minter(old_key, clock, server.url).token(PATH)}", PATH).iss
            == REMOTE_ISS
        )

        server.keys = [new_key]  # the EHR rotates its key
        caller = verifier.verify(f"Bearer {_minter(new_key, clock, server.url).token(PATH)}", PATH)

        assert caller.iss == REMOTE_ISS
        assert server.fetches == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown(tmp_path: Path, clock: MovableClock) -> None:
    """Anyone who knows an issuer name can send random kids; they must not turn into a flood of fetches."""
    key = new_es384_key()
    with JwksServer(keys=[key]) as server:
        verifier = _verifier(_remote_registry(tmp_path, server.url), clock, jwks_refresh_cooldown_seconds=600)
        verifier.verify(f"Bearer {_minter(key, clock).token(PATH)}", PATH)

        for attempt in range(5):
            stranger = new_es384_key(f"random-{attempt}")
            with pytest.raises(AuthenticationError, match="is not in the JWK Set"):
                verifier.verify(f"Bearer {_minter(stranger, clock).token(PATH)}", PATH)

        assert server.fetches == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_jwks_url_refuses_the_call(tmp_path: Path, clock: MovableClock) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/jwks.json"
    verifier = _verifier(_remote_registry(tmp_path, url), clock)

    with pytest.raises(AuthenticationError, match="could not be fetched"):
        verifier.verify(f"Bearer {_minter(new_es384_key(), clock).token(PATH)}", PATH)


def test_nothing_is_fetched_for_a_token_from_an_unknown_issuer(tmp_path: Path, clock: MovableClock) -> None:
    key = new_es384_key()
    with JwksServer(keys=[key]) as server:
        verifier = _verifier(_remote_registry(tmp_path, server.url), clock)
        token = TokenMinter(key, iss="https://someone.test", base_url=BASE_URL, clock=clock).token(PATH)

        with pytest.raises(AuthenticationError, match="not an allowed client"):
            verifier.verify(f"Bearer {token}", PATH)

        assert server.fetches == 0


def test_a_weak_rsa_key_in_the_jwks_is_not_trusted(tmp_path: Path, clock: MovableClock) -> None:
    weak = new_rs384_key("weak", bits=1024)
    with JwksServer(keys=[weak]) as server:
        verifier = _verifier(_remote_registry(tmp_path, server.url), clock)
        with pytest.warns(InsecureKeyLengthWarning):  # PyJWT warns the signer, and so do we: refused
            token = _minter(weak, clock).token(PATH)

        with pytest.raises(AuthenticationError, match="is not a valid RS384 key"):
            verifier.verify(f"Bearer {token}", PATH)


def test_an_rsa_jwk_without_alg_verifies_rs384(
    tmp_path: Path, clock: MovableClock, rs_key: SigningKey
) -> None:
    entry = {"iss": REMOTE_ISS, "jwks": {"keys": [rs_key.public_jwk(with_alg=False)]}, "fhir_servers": []}
    registry = ClientRegistry.load(write_clients_file(tmp_path / "c.yaml", [entry]))

    assert (
        _verifier(registry, clock).verify(f"Bearer {_minter(rs_key, clock).token(PATH)}", PATH).iss
        == REMOTE_ISS
    )


def test_a_key_declared_for_another_algorithm_is_not_used(tmp_path: Path, clock: MovableClock) -> None:
    key = new_es384_key("declared-es512")
    jwk = key.public_jwk() | {"alg": "ES512"}
    registry = ClientRegistry.load(
        write_clients_file(
            tmp_path / "c.yaml", [{"iss": REMOTE_ISS, "jwks": {"keys": [jwk]}, "fhir_servers": []}]
        )
    )
    with pytest.raises(AuthenticationError, match="not a valid ES384 key"):
        _verifier(registry, clock).verify(f"Bearer {_minter(key, clock).token(PATH)}", PATH)


def test_a_verifier_needs_a_base_url(tmp_path: Path, clock: MovableClock) -> None:
    with pytest.raises(ValueError, match="public base URL"):
        _verifier(_remote_registry(tmp_path, "https://x.test/jwks"), clock, audiences=())


def test_base_urls_with_a_trailing_slash_still_match(tmp_path: Path, clock: MovableClock) -> None:
    key = new_es384_key()
    entry = client_entry(REMOTE_ISS, keys=[key])
    verifier = _verifier(
        ClientRegistry.load(write_clients_file(tmp_path / "c.yaml", [entry])),
        clock,
        audiences=(BASE_URL + "/",),
    )
    assert verifier.verify(f"Bearer {_minter(key, clock).token(PATH)}", PATH).iss == REMOTE_ISS
