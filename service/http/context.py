"""What a request handler needs from the app and the request: the Runtime and the authenticated client."""

from __future__ import annotations

from flask import current_app, g

from service.runtime import Runtime
from service.security import AuthenticatedClient

EXTENSION_KEY = "lbp-imaging-cds"


def runtime() -> Runtime:
    """The Runtime of the app handling the current request."""
    value: Runtime = current_app.extensions[EXTENSION_KEY]
    return value


def cds_client() -> AuthenticatedClient | None:
    """The CDS client that signed this request's JWT; None when authentication is disabled."""
    client: AuthenticatedClient | None = g.get("cds_client")
    return client
