"""The questions link's token: signed (HMAC-SHA256 JWT), single-purpose, short-lived.

It names one assessment and nothing else: no patient data, no scope beyond answering that assessment's
questions. Single use is kept by the store (answers are accepted once per assessment), not by the token.
The key is CDS_QUESTIONS_KEY, shared by every replica; without it a random key is made at start-up
(gunicorn's preload shares it between the workers of one instance), so links do not survive a restart
and one instance's links are refused by another.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from service.errors import ApiError

ISSUER = "lbp-imaging-cds"
AUDIENCE = "lbp-imaging-cds:questions"
ALGORITHM = "HS256"
MIN_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class QuestionsToken:
    assessment_id: str
    token_id: str
    expires_at: datetime


class TokenSigner:
    def __init__(self, key: bytes, *, lifetime: timedelta) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the questions key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.lifetime = lifetime

    @classmethod
    def from_setting(cls, key: str | None, *, lifetime: timedelta) -> TokenSigner:
        return cls(key.encode() if key else secrets.token_bytes(MIN_KEY_BYTES), lifetime=lifetime)

    def seal(self, claims: dict[str, Any], *, audience: str, now: datetime, lifetime: timedelta) -> str:
        """`claims` signed for one purpose (`audience`), valid `lifetime` from `now`."""
        timing = {"iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
        return jwt.encode(
            {**claims, "iss": ISSUER, "aud": audience, **timing}, self._key, algorithm=ALGORITHM
        )

    def unseal(self, token: str, *, audience: str, required: tuple[str, ...]) -> dict[str, Any] | None:
        """The claims of a token this service signed for `audience`, or None (forged, altered, another
        purpose, a claim missing). Expiry is the caller's to check, against the injected clock."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "aud", "iss", *required], "verify_exp": False},
            )
        except PyJWTError:
            return None
        return claims if isinstance(claims.get("exp"), int) else None

    def issue(self, assessment_id: str, *, now: datetime) -> tuple[str, QuestionsToken]:
        token_id = secrets.token_urlsafe(16)
        token = self.seal(
            {"sub": assessment_id, "jti": token_id}, audience=AUDIENCE, now=now, lifetime=self.lifetime
        )
        return token, QuestionsToken(assessment_id, token_id, now + self.lifetime)

    def verify(self, token: str | None, assessment_id: str, *, now: datetime) -> QuestionsToken:
        """The token's claims, or a 403 naming why it is refused (missing, forged, expired, another one)."""
        if not token:
            raise _refused(
                "questions-token-missing", "this link needs its token (the card's link carries it)"
            )
        claims = self.unseal(token, audience=AUDIENCE, required=("sub", "jti"))
        if claims is None:
            raise _refused("questions-token-invalid", "the link's token is not valid (altered or forged)")
        expires = claims["exp"]
        # Checked against the injected clock, not the wall clock PyJWT would use.
        if now.timestamp() >= expires:
            raise _refused(
                "questions-link-expired", "this questions link has expired: order again for a new one"
            )
        if claims["sub"] != assessment_id:
            raise _refused("questions-token-other-assessment", "the link's token is for another assessment")
        return QuestionsToken(assessment_id, str(claims["jti"]), datetime.fromtimestamp(expires, now.tzinfo))


def _refused(code: str, message: str) -> ApiError:
    return ApiError(403, code, message, "token")


__all__ = ["QuestionsToken", "TokenSigner"]
