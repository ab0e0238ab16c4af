"""Trust only known CDS clients: the clients allowlist, JWT verification and PHI-free log formatting.

The Flask edge of it (the JWT guard, CORS, the admin token, the request log line) is `service.http`.
"""

from service.security.clients import CdsClient, ClientRegistry, ClientsFileError
from service.security.jwt_verifier import (
    ALLOWED_ALGORITHMS,
    AuthenticatedClient,
    AuthenticationError,
    JwtVerifier,
    ReplayGuard,
)
from service.security.log_format import REQUEST_LOGGER, JsonLinesFormatter, configure_logging

__all__ = [
    "ALLOWED_ALGORITHMS",
    "REQUEST_LOGGER",
    "AuthenticatedClient",
    "AuthenticationError",
    "CdsClient",
    "ClientRegistry",
    "ClientsFileError",
    "JsonLinesFormatter",
    "JwtVerifier",
    "ReplayGuard",
    "configure_logging",
]
