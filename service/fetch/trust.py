"""Which FHIR servers the service may send a bearer token to, and which URLs count as the same origin.

`fhirServer` is a URL chosen by the caller: the service only fetches from it when its normalised base URL
equals one the authenticated client's allowlist names (`fhir_servers` in the clients file). Plain http is
only possible when the allowlist names the http URL itself (local demos and tests), because the scheme is
part of what must match.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urljoin, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def _split(url: str) -> tuple[Origin, str] | None:
    """(origin, path) of an absolute http(s) URL without credentials or fragment, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.fragment:
        return None
    return (scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]), parts.path


def normalise_server_url(url: object) -> str | None:
    """The canonical form of a FHIR base URL, or None when it cannot be one.

    Scheme and host lowercase, the default port left out, no trailing slash; no query, fragment or
    credentials (a base URL has none, and a URL that carries them is refused rather than guessed at).

    >>> normalise_server_url("HTTPS://EHR.example.org:443/FHIR/R4/")
    'https://ehr.example.org/FHIR/R4'
    >>> normalise_server_url("https://user:pw@ehr.example.org/fhir") is None
    True
    """
    if not isinstance(url, str) or "?" in url:
        return None
    split = _split(url)
    if split is None:
        return None
    (scheme, host, port), path = split
    netloc = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port == _DEFAULT_PORTS[scheme] else f"[{host}]:{port}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"


def trusted_server(fhir_server: object, allowed_servers: Collection[str]) -> str | None:
    """The normalised `fhir_server` when the allowlist names it, else None (then nothing may be sent)."""
    candidate = normalise_server_url(fhir_server)
    if candidate is None:
        return None
    allowed = {normalise_server_url(server) for server in allowed_servers}
    return candidate if candidate in allowed else None


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL, or None for anything else."""
    split = _split(url)
    return None if split is None else split[0]


def same_origin_url(current_url: str, link: str, origin: Origin) -> str | None:
    """`link` (a redirect or a `next` link, maybe relative) made absolute, when it stays on `origin`."""
    try:
        absolute = urljoin(current_url, link.strip())
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    return absolute if origin_of(absolute) == origin else None
