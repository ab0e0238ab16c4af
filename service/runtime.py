"""What the app builds once at start-up and every request uses: settings, knowledge, store, clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import current_app

from service.config import Settings

if TYPE_CHECKING:
    from service.cds.services import ServiceCatalog
    from service.fetch import PrefetchGatherer
    from service.rules import Rules
    from service.security import ClientRegistry
    from service.store import Store

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]
EXTENSION_KEY = "lbp-imaging-cds"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    new_id: IdFactory
    catalog: ServiceCatalog
    rules: Rules
    store: Store
    gatherer: PrefetchGatherer
    clients: ClientRegistry | None

    def close(self) -> None:
        self.gatherer.close()
        self.store.close()


def runtime() -> Runtime:
    """The Runtime of the app handling the current request."""
    value: Runtime = current_app.extensions[EXTENSION_KEY]
    return value
