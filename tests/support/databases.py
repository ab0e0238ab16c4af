"""Fresh databases for tests: a SQLite file under tmp_path, or a new PostgreSQL database dropped after.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth); set LBP_TEST_POSTGRES_URL to use
another. Each test gets its own `lbp_test_<random>` database, so tests can run in parallel and leave
nothing behind.

To run a test module against both databases, import the fixture into its conftest.py:

    from tests.support import databases

    database_url = databases.database_url  # parametrized: sqlite, postgresql

Tests that take `database_url` then run once per database; the PostgreSQL run carries the `postgres`
mark (deselect with `-m "not postgres"` where there is no server).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

POSTGRES_ADMIN_URL = os.environ.get("LBP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = (
    pytest.param(SQLITE, id=SQLITE),
    pytest.param(POSTGRESQL, id=POSTGRESQL, marks=pytest.mark.postgres),
)


def sqlite_database_url(directory: Path, name: str = "lbp-imaging-cds.db") -> str:
    return f"sqlite:///{directory / name}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration of the block; its URL (postgresql://...)."""
    name = f"lbp_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            # FORCE: a store a failing test left open must not keep the database alive.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_database_exists(url: str) -> bool:
    name = make_url(url).database
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of an empty database of `backend` ("sqlite" or "postgresql")."""
    if backend == SQLITE:
        yield sqlite_database_url(directory)
    elif backend == POSTGRESQL:
        with postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown database backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test, once on SQLite and once on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
