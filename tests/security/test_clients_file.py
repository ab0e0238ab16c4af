"""The clients file: loads YAML and JSON, refuses every malformed entry with file, index and field named."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.fetch import normalise_server_url
from service.security import ClientRegistry, ClientsFileError
from tests.support.jwt_tokens import SigningKey, client_entry, write_clients_file

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = REPO_ROOT / "examples" / "clients.example.yaml"
SANDBOX_JWKS = REPO_ROOT / "tests" / "fixtures" / "reference-examples" / "sandbox_public_jwks.json"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_loads_yaml_and_json_with_both_key_sources(tmp_path: Path, es_key: SigningKey, suffix: str) -> None:
    path = write_clients_file(
        tmp_path / f"clients{suffix}",
        [
            client_entry(
                "https://ehr-a.test",
                keys=[es_key],
                fhir_servers=["https://EHR-A.test/fhir/", "https://ehr-a.test/fhir"],
                tenants=["t1"],
            ),
            client_entry("https://ehr-b.test", jwks_url="https://ehr-b.test/jwks.json"),
        ],
    )

    registry = ClientRegistry.load(path)

    first, second = registry.get("https://ehr-a.test"), registry.get("https://ehr-b.test")
    assert first is not None
    assert second is not None
    assert first.fhir_servers == ("https://ehr-a.test/fhir",)  # normalized and deduplicated
    assert first.tenants == frozenset({"t1"})
    assert first.inline_keys is not None
    assert [k.key_id for k in first.inline_keys.keys] == [es_key.kid]
    assert second.jwks_url == "https://ehr-b.test/jwks.json"
    assert second.inline_keys is None
    assert second.tenants is None
    assert second.fhir_servers == ()
    assert registry.get("https://ehr-a.test/") is None  # issuers compare exactly
    assert registry.all_fhir_servers() == ("https://ehr-a.test/fhir",)


def test_all_fhir_servers_is_the_union_of_every_client(tmp_path: Path) -> None:
    path = write_clients_file(
        tmp_path / "clients.yaml",
        [
            client_entry(
                "https://a.test", jwks_url="https://a.test/jwks", fhir_servers=["https://a.test/fhir"]
            ),
            client_entry(
                "https://b.test", jwks_url="https://b.test/jwks", fhir_servers=["https://b.test/r4"]
            ),
        ],
    )
    assert ClientRegistry.load(path).all_fhir_servers() == ("https://a.test/fhir", "https://b.test/r4")


def test_the_shipped_example_file_loads_and_pins_the_sandbox_key() -> None:
    registry = ClientRegistry.load(EXAMPLE_FILE)

    sandbox = registry.get("https://sandbox.cds-hooks.org")
    assert sandbox is not None
    assert sandbox.inline_keys is not None
    published = json.loads(SANDBOX_JWKS.read_text())["keys"][0]
    pinned = sandbox.inline_keys.keys[0]
    assert pinned.key_id == published["kid"]
    assert pinned.key.public_numbers().x == json_int(published["x"])  # the very key the Sandbox publishes
    assert all(client.fhir_servers or client.jwks_url for client in registry)


def json_int(base64url: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(base64url + "=" * (-len(base64url) % 4)), "big")


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "iss": "https://ehr.test",
        "jwks_url": "https://ehr.test/jwks",
        "fhir_servers": [],
    }
    entry.update(changes)
    return {name: value for name, value in entry.items() if value is not None}


PRIVATE_JWK = {"kty": "EC", "crv": "P-384", "kid": "k", "x": "AA", "y": "AA", "d": "AA"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], 'must be a mapping with a "clients" list'),
        ({"clients": []}, "lists no clients"),
        ({"clients": [], "extra": 1}, "extra is not a known field"),
        ({"clients": ["x"]}, "clients[0] must be a mapping"),
        ({"clients": [_entry(iss=None)]}, "clients[0].iss must be a non-empty string"),
        ({"clients": [_entry(iss=" https://ehr.test")]}, "clients[0].iss must not have leading"),
        ({"clients": [_entry(jwks_url=None)]}, "clients[0].jwks_url or jwks: exactly one"),
        ({"clients": [_entry(jwks={"keys": []})]}, "clients[0].jwks_url or jwks: exactly one"),
        ({"clients": [_entry(jwks_url="http://ehr.test/jwks")]}, "clients[0].jwks_url must use https"),
        (
            {"clients": [_entry(jwks_url="file:///etc/passwd")]},
            "clients[0].jwks_url must be an absolute http(s)",
        ),
        (
            {"clients": [_entry(jwks_url="https://u:p@ehr.test/j")]},
            "clients[0].jwks_url must not carry a user",
        ),
        ({"clients": [_entry(jwks_url=None, jwks={"keys": []})]}, "clients[0].jwks must be a JWK Set"),
        ({"clients": [_entry(jwks_url=None, jwks={"keys": [{"kty": "EC"}]})]}, "clients[0].jwks.keys[0].kid"),
        ({"clients": [_entry(jwks_url=None, jwks={"keys": [PRIVATE_JWK]})]}, "jwks.keys[0].d is private key"),
        (
            {"clients": [_entry(jwks_url=None, jwks={"keys": [{"kty": "EC", "kid": "k", "crv": "P-1"}]})]},
            "clients[0].jwks holds no usable public key",
        ),
        ({"clients": [_entry(fhir_servers=None)]}, "clients[0].fhir_servers must be a list"),
        (
            {"clients": [_entry(fhir_servers=["https://e.test/fhir?x=1"])]},
            "fhir_servers[0] must not have a query",
        ),
        (
            {"clients": [_entry(fhir_servers=["ftp://e.test"])]},
            "fhir_servers[0] must be an absolute http(s) URL",
        ),
        ({"clients": [_entry(tenants=[])]}, "clients[0].tenants must be a non-empty list"),
        ({"clients": [_entry(tenants=["a", 3])]}, "clients[0].tenants[1] must be a non-empty string"),
        ({"clients": [_entry(), _entry(jwks_id="x")]}, "clients[1].jwks_id is not a known field"),
        ({"clients": [_entry(), _entry()]}, "clients[1].iss repeats clients[0].iss"),
    ],
)
def test_malformed_files_are_refused_naming_file_client_and_field(
    tmp_path: Path, document: Any, expected: str
) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(document))

    with pytest.raises(ClientsFileError) as refused:
        ClientRegistry.load(path)

    assert str(refused.value).startswith(f"clients file {path}: ")
    assert expected in str(refused.value)


def test_loopback_http_urls_are_allowed_for_local_testing(tmp_path: Path) -> None:
    path = write_clients_file(
        tmp_path / "clients.yaml",
        [
            client_entry(
                "https://a.test", jwks_url="http://127.0.0.1:9/jwks", fhir_servers=["http://localhost:8/f"]
            )
        ],
    )
    assert ClientRegistry.load(path).all_fhir_servers() == ("http://localhost:8/f",)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("clients.json", '{"clients": [', "is not valid JSON"),
        ("clients.yaml", "clients: [\n  - {iss: ", "is not valid YAML"),
        ("clients.yaml", b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_unreadable_files_name_the_problem(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ClientsFileError, match=expected):
        ClientRegistry.load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match=r"clients file .*nowhere\.yaml: cannot be read"):
        ClientRegistry.load(tmp_path / "nowhere.yaml")


def test_allowlisted_servers_are_kept_in_the_form_the_fetcher_compares() -> None:
    entry = client_entry(
        "https://ehr.test",
        jwks_url="https://ehr.test/jwks.json",
        fhir_servers=["HTTPS://EHR.test:8443/FHIR/R4/", "https://EHR.test:443/fhir"],
    )
    client = ClientRegistry.from_document({"clients": [entry]}, source="test").get("https://ehr.test")
    assert client is not None
    assert client.fhir_servers == ("https://ehr.test:8443/FHIR/R4", "https://ehr.test/fhir")
    assert all(normalise_server_url(server) == server for server in client.fhir_servers)
