"""Verify the JWT a CDS client sends with every call (CDS Hooks 2.0, "Trusting CDS Clients").

Checks, in order (cheap and local first, so an anonymous caller cannot make us fetch anything):
bearer syntax; header `alg` ES384/RS384 only (never `none` or HMAC), `typ` JWT when given, and `kid`;
`iss` on the allowlist; `jku`, when the client has a JWKS URL, equal to it; the key from that client's
JWK Set (refreshed once on an unknown `kid`); signature; `aud` = a configured public base URL + the
endpoint path; `exp`, `iat`, `nbf` against the injected clock with a small leeway, and a lifetime of at
most an hour; `tenant` when the client lists tenants; and last, `jti` not seen before (shared by every
worker and replica through the ReplayGuard).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.exceptions import PyJWKClientConnectionError, PyJWTError

from service.security.clients import CdsClient, ClientRegistry

ALLOWED_ALGORITHMS = ("ES384", "RS384")
MAX_TOKEN_CHARS = 16 * 1024  # real CDS Hooks JWTs are well under 2 KB
MAX_JTI_CHARS = 255  # what the replay store keeps per token
MIN_RSA_BITS = 2048
# CDS clients mint a token per call, valid for minutes (the Sandbox: 5). A longer-lived token is a
# standing credential if stolen, and would keep its jti in the replay store for as long.
DEFAULT_MAX_LIFETIME_SECONDS = 3600
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
_USER_AGENT = "lbp-imaging-cds (JWKS fetch)"


class AuthenticationError(Exception):
    """The call is not trusted. `reason` is for the log only: the caller gets a bare 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayGuard(Protocol):
    """Remembers the `jti` of accepted tokens so a captured call cannot be replayed.

    The implementation must be shared by every worker and replica (the database) and atomic: of two
    concurrent calls with the same (issuer, jti), exactly one gets True.
    """

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Record (issuer, jti); True if it was not seen before. Keep it at least until `expires_at`
        (aware UTC: the token's `exp` plus the leeway, after which the token is refused anyway)."""
        ...


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """Who is calling, once the JWT has been verified."""

    iss: str
    fhir_servers: tuple[str, ...]  # normalized base URLs this client may ask us to fetch from
    tenant: str | None


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise AuthenticationError("no Authorization header")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Authorization header is not 'Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError(f"token longer than {MAX_TOKEN_CHARS} characters")
    return token


def _text(value: Any) -> str:
    """A caller-chosen value, shortened for a log line."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(f"{name} is not a NumericDate")
    return float(value)


def _key_fits(algorithm: str, key: jwt.PyJWK) -> bool:
    """Is `key` a public key of the right kind and size for `algorithm`?"""
    public_key = key.key
    if algorithm == "ES384":
        fits = isinstance(public_key, EllipticCurvePublicKey) and public_key.curve.name == "secp384r1"
    else:
        fits = isinstance(public_key, RSAPublicKey) and public_key.key_size >= MIN_RSA_BITS
    # PyJWT names an RSA key without an `alg` member "RS256", so only a different declared alg counts.
    declared = key.algorithm_name
    return fits and (declared == algorithm or (algorithm == "RS384" and declared == "RS256"))


class JwtVerifier:
    """Verifies CDS Hooks client JWTs against the clients allowlist. Thread-safe; build once at start-up."""

    def __init__(
        self,
        registry: ClientRegistry,
        replay_guard: ReplayGuard,
        *,
        audiences: Sequence[str],
        leeway_seconds: float,
        jwks_timeout_seconds: float,
        clock: Callable[[], datetime],
        jwks_cache_seconds: float = 300,
        jwks_refresh_cooldown_seconds: float = 10,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
    ) -> None:
        if not audiences:
            raise ValueError("at least one public base URL is needed to check `aud`")
        self._registry = registry
        self._replay_guard = replay_guard
        self._base_urls = tuple(url.rstrip("/") for url in audiences)
        self._leeway = float(leeway_seconds)
        self._max_lifetime = float(max_lifetime_seconds)
        self._clock = clock
        # One client per JWKS URL: it caches the set for `jwks_cache_seconds` and refetches at most once
        # per cooldown on an unknown kid (key rotation) so random kids cannot hammer the EHR.
        # Per-key LRU caching stays off: it never expires, so a withdrawn key would stay trusted.
        self._jwks_clients = {
            client.jwks_url: jwt.PyJWKClient(
                client.jwks_url,
                cache_keys=False,
                cache_jwk_set=True,
                lifespan=jwks_cache_seconds,
                timeout=jwks_timeout_seconds,
                cooldown_duration=jwks_refresh_cooldown_seconds,
                headers={"User-Agent": _USER_AGENT},
            )
            for client in registry
            if client.jwks_url is not None
        }

    def verify(self, authorization_header: str | None, endpoint_path: str) -> AuthenticatedClient:
        """The verified caller of `endpoint_path` (e.g. `/cds-services/x`), or AuthenticationError."""
        token = _bearer_token(authorization_header)
        algorithm, kid, header, client = self._read_unverified(token)
        jku = header.get("jku")
        # With an inline (pinned) key set the jku is never fetched, so it cannot redirect us anywhere.
        if jku is not None and client.jwks_url is not None and jku != client.jwks_url:
            raise AuthenticationError(f"jku {_text(jku)} is not the JWKS URL configured for {client.iss!r}")
        key = self._signing_key(client, kid, algorithm)
        claims = self._verified_claims(token, key, algorithm, endpoint_path)
        expires = self._check_times(claims)
        tenant = self._check_tenant(client, claims)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise AuthenticationError(f"jti must be a string of 1 to {MAX_JTI_CHARS} characters")
        replay_window_end = datetime.fromtimestamp(expires + self._leeway, UTC)
        if not self._replay_guard.first_use(client.iss, jti, replay_window_end):
            raise AuthenticationError(f"jti already used (replay) for {client.iss!r}")
        return AuthenticatedClient(iss=client.iss, fhir_servers=client.fhir_servers, tenant=tenant)

    def _read_unverified(self, token: str) -> tuple[str, str, Mapping[str, Any], CdsClient]:
        """Algorithm, kid, header and client from the token before any key is touched (parsed once)."""
        try:
            unverified = jwt.decode_complete(token, options={"verify_signature": False})
        except PyJWTError:
            raise AuthenticationError("token is not a well-formed JWS with a JSON payload") from None
        header: Mapping[str, Any] = unverified["header"]
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise AuthenticationError(f"alg {_text(algorithm)} is not allowed (only ES384, RS384)")
        token_type = header.get("typ")
        # Explicit typing (RFC 8725 3.11): another kind of JWT from the same issuer is not a CDS call.
        if token_type is not None and (not isinstance(token_type, str) or token_type.upper() != "JWT"):
            raise AuthenticationError(f"typ {_text(token_type)} is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("header has no kid")
        issuer = unverified["payload"].get("iss")
        client = self._registry.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise AuthenticationError(f"iss {_text(issuer)} is not an allowed client")
        return str(algorithm), kid, header, client

    def _signing_key(self, client: CdsClient, kid: str, algorithm: str) -> jwt.PyJWK:
        key: jwt.PyJWK | None
        if client.inline_keys is not None:
            key = next(
                (
                    candidate
                    for candidate in client.inline_keys.keys
                    if candidate.key_id == kid and candidate.public_key_use in ("sig", None)
                ),
                None,
            )
        else:
            key = self._fetched_key(client, kid)
        if key is None:
            raise AuthenticationError(f"kid {_text(kid)} is not in the JWK Set of {client.iss!r}")
        if not _key_fits(algorithm, key):
            raise AuthenticationError(f"key {_text(kid)} of {client.iss!r} is not a valid {algorithm} key")
        return key

    def _fetched_key(self, client: CdsClient, kid: str) -> jwt.PyJWK | None:
        assert client.jwks_url is not None
        try:
            return self._jwks_clients[client.jwks_url].get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise AuthenticationError(f"JWK Set of {client.iss!r} could not be fetched") from None
        except PyJWTError:
            return None  # unknown kid even after a refresh, or a set with no usable signing key

    def _verified_claims(
        self, token: str, key: jwt.PyJWK, algorithm: str, endpoint_path: str
    ) -> dict[str, Any]:
        audiences = [base + endpoint_path for base in self._base_urls]
        try:
            return jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=audiences,
                # Times are checked against the injected clock below; PyJWT would read the system clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthenticationError("signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(f"claim {error.claim} is missing") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(f"aud is not the URL of {endpoint_path}") from None
        except PyJWTError as error:
            raise AuthenticationError(f"token refused: {type(error).__name__}") from None

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        now = self._clock().timestamp()
        expires = _numeric_date(claims, "exp")
        issued = _numeric_date(claims, "iat")
        if expires <= now - self._leeway:
            raise AuthenticationError("token expired")
        if issued > now + self._leeway:
            raise AuthenticationError("iat is in the future")
        if expires < issued:
            raise AuthenticationError("exp is before iat")
        if expires - now > self._max_lifetime + self._leeway:
            raise AuthenticationError(f"exp is more than {self._max_lifetime:.0f} s away")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + self._leeway:
            raise AuthenticationError("token not yet valid (nbf)")
        return expires

    @staticmethod
    def _check_tenant(client: CdsClient, claims: Mapping[str, Any]) -> str | None:
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthenticationError("tenant is not a string")
        if client.tenants is not None and tenant not in client.tenants:
            raise AuthenticationError(f"tenant {_text(tenant)} is not allowed for {client.iss!r}")
        return tenant
