"""Real CDS Hooks client JWTs for tests: fresh ES384/RS384 keys, signed tokens, clients files, a JWKS server.

    key = new_es384_key()
    minter = TokenMinter(key, iss="https://ehr.test", base_url="http://localhost", clock=clock)
    client.get("/cds-services", headers=minter.headers("/cds-services"))
    write_clients_file(tmp_path / "clients.yaml", [client_entry("https://ehr.test", keys=[key])])

Nothing here is mocked: tokens are signed with PyJWT and the service verifies them with the public keys.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A client's private signing key and the public JWK the service is given for it."""

    kid: str
    algorithm: str  # "ES384" or "RS384"
    private_key: PrivateKey

    def public_jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        jwk: dict[str, Any] = (
            ECAlgorithm.to_jwk(public_key, as_dict=True)
            if isinstance(public_key, ec.EllipticCurvePublicKey)
            else RSAAlgorithm.to_jwk(public_key, as_dict=True)
        )
        jwk.update({"kid": self.kid, "use": "sig"})
        if with_alg:
            jwk["alg"] = self.algorithm
        return jwk


def new_es384_key(kid: str | None = None) -> SigningKey:
    return SigningKey(kid or f"es384-{uuid.uuid4()}", "ES384", ec.generate_private_key(ec.SECP384R1()))


def new_rs384_key(kid: str | None = None, *, bits: int = 2048) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return SigningKey(kid or f"rs384-{uuid.uuid4()}", "RS384", private_key)


def key_from_private_jwk(jwk: Mapping[str, Any]) -> SigningKey:
    """A SigningKey from a private JWK (the CDS Hooks spec's example key, for instance)."""
    algorithm = str(jwk["alg"])
    loader = ECAlgorithm if algorithm.startswith("ES") else RSAAlgorithm
    private_key = loader.from_jwk(dict(jwk))
    assert isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return SigningKey(str(jwk["kid"]), algorithm, private_key)


def jwk_set(keys: Iterable[SigningKey]) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def standard_claims(
    iss: str, aud: str | Sequence[str], *, now: datetime, lifetime_seconds: int = 300, **extra: Any
) -> dict[str, Any]:
    """The CDS Hooks claims: iss, aud, iat, exp, a fresh jti; `extra` adds or replaces claims and a
    value of None removes that claim (`jti=None` gives a token without jti)."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud if isinstance(aud, str) else list(aud),
        "iat": issued,
        "exp": issued + lifetime_seconds,
        "jti": str(uuid.uuid4()),
    }
    claims.update(extra)
    return {name: value for name, value in claims.items() if value is not None}


def sign(key: SigningKey, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
    """A compact JWS over `claims`; header `typ`, `alg` and `kid` plus `headers` (None removes one)."""
    header: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    header.update(headers or {})
    kept = {name: value for name, value in header.items() if value is not None}
    return jwt.encode(dict(claims), key.private_key, algorithm=key.algorithm, headers=kept)


@dataclass
class TokenMinter:
    """Mints tokens for one client calling one service: `minter.headers("/cds-services")`."""

    key: SigningKey
    iss: str
    base_url: str
    clock: Callable[[], datetime]
    jku: str | None = None

    def token(
        self,
        path: str,
        *,
        headers: Mapping[str, Any] | None = None,
        lifetime_seconds: int = 300,
        **claims: Any,
    ) -> str:
        all_claims = standard_claims(
            self.iss, self.base_url.rstrip("/") + path, now=self.clock(), lifetime_seconds=lifetime_seconds
        )
        all_claims.update(claims)
        all_headers = {"jku": self.jku, **(headers or {})}
        return sign(self.key, {n: v for n, v in all_claims.items() if v is not None}, headers=all_headers)

    def headers(self, path: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path, **claims)}"}


def client_entry(
    iss: str,
    *,
    keys: Iterable[SigningKey] | None = None,
    jwks_url: str | None = None,
    fhir_servers: Iterable[str] = (),
    tenants: Iterable[str] | None = None,
) -> dict[str, Any]:
    """One entry of a clients file: inline public keys (`keys`) or a `jwks_url`."""
    entry: dict[str, Any] = {"iss": iss}
    if jwks_url is not None:
        entry["jwks_url"] = jwks_url
    if keys is not None:
        entry["jwks"] = jwk_set(keys)
    entry["fhir_servers"] = list(fhir_servers)
    if tenants is not None:
        entry["tenants"] = list(tenants)
    return entry


def write_clients_file(path: Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """Write a clients file (JSON when `path` ends in .json, else YAML) and return its path."""
    document = {"clients": [dict(entry) for entry in entries]}
    if path.suffix == ".json":
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class MemoryReplayGuard:
    """A ReplayGuard for one process (the real one lives in the database, shared by replicas)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        with self._lock:
            if (issuer, jti) in self.seen:
                return False
            self.seen[(issuer, jti)] = expires_at
            return True


@dataclass
class JwksServer:
    """Serves a JWK Set at `url` on loopback; change `keys` to rotate; `fetches` counts requests."""

    keys: list[SigningKey] = field(default_factory=list)
    path: str = "/.well-known/jwks.json"
    fetches: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "use JwksServer as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def __enter__(self) -> JwksServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != owner.path:
                    self.send_error(404)
                    return
                owner.fetches += 1
                body = json.dumps(jwk_set(owner.keys)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
