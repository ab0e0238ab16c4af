"""What the app builds once at start-up and every use case uses: settings, knowledge, store, clients.

Flask-free: the HTTP layer finds the Runtime of the current app with `service.http.context.runtime()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from service.config import Settings

if TYPE_CHECKING:
    from service.cds.services import ServiceCatalog
    from service.fetch import PrefetchGatherer
    from service.questions import QuestionCatalog, TokenSigner
    from service.questions.smart import SmartLauncher
    from service.rules import Rules
    from service.security import ClientRegistry
    from service.store import Store

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]


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
    questions: QuestionCatalog  # the red-flag questions, built from the rules once
    question_signer: TokenSigner  # signs and checks the questions link's token
    smart: SmartLauncher | None = None  # SMART app launch of the questions page; None: off

    def close(self) -> None:
        self.gatherer.close()
        self.store.close()
