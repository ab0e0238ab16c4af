"""Fresh databases for tests: a SQLite file under tmp_path, or a new PostgreSQL database dropped after.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth); set LBP_TEST_POSTGRES_URL to use
another. A test run creates one `lbp_test_<random>` database (on first use) and drops it at the end; each
test gets its own schema in it (the URL's `options=-csearch_path=...`), created empty and dropped after
the test: as isolated as a database per test, but ~3 ms to make instead of ~400 ms.

To run a test module against both databases, import the fixture into its conftest.py:

    from tests.support import databases

    database_url = databases.database_url  # parametrized: sqlite, postgresql
    postgres_test_database = databases.postgres_test_database  # the run's database, used by it

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
def postgres_schema(database_url: str) -> Iterator[str]:
    """A new, empty schema in the database at `database_url`; a URL whose connections use only it."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_test_database() -> Iterator[str]:
    """This test run's PostgreSQL database (created on first use, dropped at the end of the run)."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test, once on SQLite and once on PostgreSQL (a schema of its own)."""
    if request.param == SQLITE:
        yield sqlite_database_url(tmp_path)
        return
    with postgres_schema(request.getfixturevalue("postgres_test_database")) as url:
        yield url
