"""Every store test runs against a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from service.store import Store
from tests.store.builders import PATIENT_HASH_KEY, ManualClock
from tests.support import databases

# Every test here that takes `database_url` runs on SQLite and on PostgreSQL.
database_url = databases.database_url
postgres_test_database = databases.postgres_test_database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def open_store(database_url: str, clock: ManualClock) -> Iterator[Callable[..., Store]]:
    """Opens stores on the test's database (each like a separate worker); all closed at the end."""
    opened: list[Store] = []

    def _open(**options: object) -> Store:
        arguments: dict[str, object] = {"patient_hash_key": PATIENT_HASH_KEY, "clock": clock, **options}
        store = Store.open(database_url, **arguments)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()
