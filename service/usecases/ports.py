"""What a use case needs from outside the core, as small types: who called, and where log fields go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from service.security import AuthenticatedClient, ClientRegistry


class RequestLog(Protocol):
    """Adds ids and codes (never PHI) to the log line of the request being served."""

    def __call__(self, **fields: Any) -> None: ...


def no_request_log(**fields: Any) -> None:
    """For callers with no request line to annotate (the CLI, the Bulk audit)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked: the client's `iss` for the audit record, and the FHIR servers it may have us fetch from."""

    iss: str | None = None
    fhir_servers: tuple[str, ...] = ()

    @classmethod
    def of(cls, client: AuthenticatedClient | None, registry: ClientRegistry | None) -> Caller:
        if client is not None:
            return cls(iss=client.iss, fhir_servers=tuple(client.fhir_servers))
        # Auth disabled (local demos): the servers named in the clients file, if one is configured.
        servers = tuple(registry.all_fhir_servers()) if registry is not None else ()
        return cls(iss=None, fhir_servers=servers)
