"""Keys, a replay guard and a movable clock for the security tests (RSA keys are slow: made once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.support.jwt_tokens import MemoryReplayGuard, SigningKey, new_es384_key, new_rs384_key

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass
class MovableClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def replay_guard() -> MemoryReplayGuard:
    return MemoryReplayGuard()


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return new_es384_key("ehr-es-1")


@pytest.fixture(scope="session")
def rs_key() -> SigningKey:
    return new_rs384_key("ehr-rs-1")


@pytest.fixture(scope="session")
def stranger_key() -> SigningKey:
    """A key nobody registered."""
    return new_es384_key("stranger")
