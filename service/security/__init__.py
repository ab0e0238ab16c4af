"""Trust only known CDS clients: the clients allowlist, JWT verification, CORS, admin token, PHI-free logs."""

from service.security.clients import CdsClient, ClientRegistry, ClientsFileError
from service.security.jwt_verifier import (
    ALLOWED_ALGORITHMS,
    AuthenticatedClient,
    AuthenticationError,
    JwtVerifier,
    ReplayGuard,
)
from service.security.request_log import (
    REQUEST_LOGGER,
    JsonLinesFormatter,
    annotate,
    configure_logging,
    init_request_logging,
)
from service.security.web import check_admin_token, init_security, require_admin

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
    "annotate",
    "check_admin_token",
    "configure_logging",
    "init_request_logging",
    "init_security",
    "require_admin",
]
