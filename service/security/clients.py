"""The CDS clients file: which issuers may call, the keys they sign with, the FHIR servers they may name.

Format (YAML or JSON; `CDS_CLIENTS_FILE`):

    clients:
      - iss: https://ehr.example.org          # the JWT `iss`, compared exactly
        jwks_url: https://ehr.example.org/.well-known/jwks.json   # or `jwks: {keys: [...]}` inline
        fhir_servers: [https://ehr.example.org/fhir]   # where this client may send us to fetch data
        tenants: [hospital-a]                  # optional: the `tenant` claim must be one of these

Validation is strict and happens at start-up: every problem names the file, the client and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jwt import PyJWKSet
from jwt.exceptions import PyJWTError

from service.config import ConfigError
from service.fetch.trust import normalise_server_url

# JWK members that only a private key has: a clients file must never hold a signing secret.
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CLIENT_FIELDS = frozenset({"iss", "jwks_url", "jwks", "fhir_servers", "tenants"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ClientsFileError(ConfigError):
    """The clients file cannot be used; the message names the file, the client index and the field."""


def _url_problem(value: Any) -> str | None:
    """Why `value` is not an acceptable service URL, or None when it is."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty URL string"
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        return f"is not a valid URL: {value!r}"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return f"must be an absolute http(s) URL, got {value!r}"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.query or parts.fragment:
        return f"must not have a query string or fragment, got {value!r}"
    # Plain http would let anyone on the path swap keys or read bearer tokens; allowed only on loopback.
    if parts.scheme.lower() == "http" and host.lower() not in _LOOPBACK_HOSTS:
        return f"must use https (plain http only for localhost), got {value!r}"
    return None


@dataclass(frozen=True, slots=True)
class CdsClient:
    """One trusted CDS client (an EHR, or a test harness such as the CDS Hooks Sandbox)."""

    iss: str
    jwks_url: str | None
    inline_keys: PyJWKSet | None
    fhir_servers: tuple[str, ...]  # normalised with service.fetch.normalise_server_url
    tenants: frozenset[str] | None  # None: the client does not restrict `tenant`


class _ClientParser:
    """Turns one entry of the file into a CdsClient, naming `source` and the index in every error."""

    def __init__(self, source: str, index: int, entry: Any) -> None:
        self.source = source
        self.index = index
        self.entry = entry

    def error(self, field: str | None, problem: str) -> ClientsFileError:
        where = f"clients[{self.index}]" + (f".{field}" if field else "")
        return ClientsFileError(f"clients file {self.source}: {where} {problem}")

    def parse(self) -> CdsClient:
        if not isinstance(self.entry, Mapping):
            raise self.error(None, "must be a mapping with iss, jwks_url or jwks, and fhir_servers")
        unknown = sorted(str(key) for key in self.entry if key not in _CLIENT_FIELDS)
        if unknown:
            raise self.error(unknown[0], f"is not a known field (known: {', '.join(sorted(_CLIENT_FIELDS))})")
        iss = self.entry.get("iss")
        if not isinstance(iss, str) or not iss.strip():
            raise self.error("iss", "must be a non-empty string (the JWT issuer)")
        if iss != iss.strip():
            raise self.error("iss", "must not have leading or trailing spaces (it is compared exactly)")
        jwks_url, inline_keys = self._key_source()
        return CdsClient(
            iss=iss,
            jwks_url=jwks_url,
            inline_keys=inline_keys,
            fhir_servers=self._fhir_servers(),
            tenants=self._tenants(),
        )

    def _key_source(self) -> tuple[str | None, PyJWKSet | None]:
        has_url, has_inline = "jwks_url" in self.entry, "jwks" in self.entry
        if has_url == has_inline:
            raise self.error("jwks_url", "or jwks: exactly one of the two must be given")
        if has_url:
            url = self.entry["jwks_url"]
            problem = _url_problem(url)
            if problem:
                raise self.error("jwks_url", problem)
            return str(url).strip(), None
        return None, self._inline_keys(self.entry["jwks"])

    def _inline_keys(self, jwks: Any) -> PyJWKSet:
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            raise self.error("jwks", 'must be a JWK Set: {"keys": [<public JWK>, ...]} with at least one key')
        for position, key in enumerate(jwks["keys"]):
            field = f"jwks.keys[{position}]"
            if not isinstance(key, Mapping):
                raise self.error(field, "must be a JWK object")
            if not isinstance(key.get("kid"), str) or not key["kid"]:
                raise self.error(f"{field}.kid", "is required: tokens name their key by kid")
            private = sorted(_PRIVATE_JWK_MEMBERS.intersection(key))
            if private:
                raise self.error(f"{field}.{private[0]}", "is private key material: list only the public key")
        try:
            key_set = PyJWKSet.from_dict(dict(jwks))
        except PyJWTError as error:
            raise self.error("jwks", f"holds no usable public key ({type(error).__name__})") from None
        if len(key_set.keys) != len(jwks["keys"]):
            raise self.error("jwks", "holds a key PyJWT cannot use (check kty, crv and the key values)")
        return key_set

    def _fhir_servers(self) -> tuple[str, ...]:
        servers = self.entry.get("fhir_servers")
        if not isinstance(servers, list):
            raise self.error("fhir_servers", "must be a list of FHIR base URLs (it may be empty)")
        normalized: list[str] = []
        for position, url in enumerate(servers):
            problem = _url_problem(url)
            if problem:
                raise self.error(f"fhir_servers[{position}]", problem)
            # The same canonical form the fetcher compares `fhirServer` in (service.fetch.trust).
            server = normalise_server_url(url)
            if server is None:
                raise self.error(f"fhir_servers[{position}]", f"is not a usable FHIR base URL: {url!r}")
            normalized.append(server)
        return tuple(dict.fromkeys(normalized))

    def _tenants(self) -> frozenset[str] | None:
        if "tenants" not in self.entry:
            return None
        tenants = self.entry["tenants"]
        if not isinstance(tenants, list) or not tenants:
            raise self.error("tenants", "must be a non-empty list of strings (omit it to accept any tenant)")
        for position, tenant in enumerate(tenants):
            if not isinstance(tenant, str) or not tenant:
                raise self.error(f"tenants[{position}]", "must be a non-empty string")
        return frozenset(tenants)


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ClientsFileError(f"clients file {path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ClientsFileError(f"clients file {path}: is not UTF-8 text") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        # Both parsers name the line and column; the file holds no PHI, so the detail is safe to show.
        raise ClientsFileError(f"clients file {path}: is not valid {_format_name(path)}: {error}") from None


def _format_name(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "YAML"


class ClientRegistry:
    """The trusted CDS clients, by issuer."""

    def __init__(self, clients: list[CdsClient]) -> None:
        self._by_issuer = {client.iss: client for client in clients}

    @classmethod
    def load(cls, path: str | Path) -> ClientRegistry:
        """Read and validate a clients file (`.json` as JSON, anything else as YAML)."""
        path = Path(path)
        return cls.from_document(_read_document(path), source=str(path))

    @classmethod
    def from_document(cls, document: Any, *, source: str) -> ClientRegistry:
        """Validate an already parsed clients document; `source` names it in error messages."""
        if not isinstance(document, Mapping) or not isinstance(document.get("clients"), list):
            raise ClientsFileError(f'clients file {source}: must be a mapping with a "clients" list')
        unknown = sorted(str(key) for key in document if key != "clients")
        if unknown:
            raise ClientsFileError(
                f'clients file {source}: {unknown[0]} is not a known field (only "clients")'
            )
        if not document["clients"]:
            raise ClientsFileError(f"clients file {source}: lists no clients, so no call could be accepted")
        clients: list[CdsClient] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(document["clients"]):
            client = _ClientParser(source, index, entry).parse()
            if client.iss in seen:
                raise ClientsFileError(
                    f"clients file {source}: clients[{index}].iss repeats clients[{seen[client.iss]}].iss "
                    f"({client.iss!r})"
                )
            seen[client.iss] = index
            clients.append(client)
        return cls(clients)

    def get(self, iss: str) -> CdsClient | None:
        return self._by_issuer.get(iss)

    def __iter__(self) -> Iterator[CdsClient]:
        return iter(self._by_issuer.values())

    def __len__(self) -> int:
        return len(self._by_issuer)

    def all_fhir_servers(self) -> tuple[str, ...]:
        """Every FHIR server any client may name (the fetch allowlist when auth is disabled for demos)."""
        return tuple(sorted({url for client in self._by_issuer.values() for url in client.fhir_servers}))
