"""The schema: no PHI columns, created and migrated once even when workers start together, and the
database URLs and SQLite settings the store relies on."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, select, text

from service.config import ConfigError
from service.store import Store, StoreError
from service.store.database import normalise_database_url
from service.store.migrations import BASELINE_VERSION, UPGRADES, MigrationError, Upgrade, latest_version
from service.store.schema import metadata, schema_migrations
from tests.store.builders import PATIENT_HASH_KEY, ManualClock, assessment, database_connection, run_together

# Column names that would mean the store keeps who the patient is, or free text about them.
PHI_NAME = re.compile(
    r"name|birth|dob|address|street|city|postal|zip|phone|email|mrn|identifier|ssn|social|gender|sex|"
    r"comment|note|text|narrative|patient_id|patient_ref",
    re.IGNORECASE,
)
# The versions this release records, and the first one a test's extra upgrade can take.
RELEASE_VERSIONS = list(range(BASELINE_VERSION, latest_version() + 1))
NEXT = latest_version() + 1


def _columns(database_url: str) -> dict[str, set[str]]:
    with database_connection(database_url) as connection:
        inspector = inspect(connection)
        return {
            table: {c["name"] for c in inspector.get_columns(table)} for table in inspector.get_table_names()
        }


def _versions(database_url: str) -> list[int]:
    with database_connection(database_url) as connection:
        return list(connection.execute(select(schema_migrations.c.version).order_by("version")).scalars())


def test_no_column_is_named_like_a_phi_field(store: Store, database_url: str) -> None:
    columns = _columns(database_url)
    assert set(columns) >= {"assessments", "assessment_orders", "feedback", "jwt_replay", "schema_migrations"}
    suspicious = sorted(
        f"{table}.{column}" for table, names in columns.items() for column in names if PHI_NAME.search(column)
    )
    # user_comment_present is a yes/no flag: the comment itself is never stored.
    assert suspicious == ["feedback.user_comment_present"]


def test_the_created_schema_is_the_declared_one(store: Store, database_url: str) -> None:
    declared = {table.name: {column.name for column in table.columns} for table in metadata.sorted_tables}
    assert _columns(database_url) == declared
    assert _versions(database_url) == RELEASE_VERSIONS


def test_workers_starting_together_create_the_schema_once(database_url: str) -> None:
    stores: list[Store] = []

    def start_worker() -> None:
        stores.append(Store.open(database_url, patient_hash_key=PATIENT_HASH_KEY, clock=ManualClock()))

    errors = run_together([start_worker] * 8)
    try:
        assert errors == []
        assert _versions(database_url) == RELEASE_VERSIONS
        stores[0].save_assessment(assessment(1))
        assert stores[-1].get_assessment("assessment-1") is not None
    finally:
        for store in stores:
            store.close()


def _add_table(name: str, calls: list[str]) -> Callable[[Connection], None]:
    def apply(connection: Connection) -> None:
        calls.append(name)
        connection.execute(text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)"))

    return apply


def test_upgrades_apply_in_order_once_and_are_recorded(
    open_store: Callable[..., Store], database_url: str
) -> None:
    open_store().close()  # a database at this release's version
    calls: list[str] = []
    upgrades = (
        *UPGRADES,
        Upgrade(NEXT, "first extra table", _add_table("extra_one", calls)),
        Upgrade(NEXT + 1, "second extra table", _add_table("extra_two", calls)),
    )
    open_store(upgrades=upgrades[:-1]).close()
    open_store(upgrades=upgrades).close()
    open_store(upgrades=upgrades).close()  # nothing left to do: CREATE TABLE would fail if re-run

    assert calls == ["extra_one", "extra_two"]
    assert _versions(database_url) == [*RELEASE_VERSIONS, NEXT, NEXT + 1]
    assert {"extra_one", "extra_two"} <= set(_columns(database_url))


def test_a_fresh_database_gets_the_baseline_and_every_version_recorded(
    open_store: Callable[..., Store], database_url: str
) -> None:
    calls: list[str] = []
    open_store(upgrades=(*UPGRADES, Upgrade(NEXT, "extra", _add_table("extra_one", calls))))
    assert calls == []  # the baseline is the current schema already
    assert _versions(database_url) == [*RELEASE_VERSIONS, NEXT]


def test_a_failing_upgrade_leaves_the_database_as_it_was(
    open_store: Callable[..., Store], database_url: str
) -> None:
    open_store().close()

    def half_done(connection: Connection) -> None:
        connection.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        connection.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(StoreError, match="could not open the database"):
        open_store(upgrades=(*UPGRADES, Upgrade(NEXT, "broken", half_done)))
    assert _versions(database_url) == RELEASE_VERSIONS
    assert "half_done" not in _columns(database_url)


def test_upgrades_must_be_numbered_in_sequence(open_store: Callable[..., Store]) -> None:
    with pytest.raises(MigrationError, match=r"must run \[2, 3\]"):
        open_store(upgrades=(Upgrade(2, "a", _add_table("a", [])), Upgrade(4, "b", _add_table("b", []))))


def test_tables_without_a_recorded_version_are_not_touched(database_url: str) -> None:
    with database_connection(database_url) as connection, connection.begin():
        connection.execute(text("CREATE TABLE assessments (anything INTEGER)"))
    with pytest.raises(MigrationError, match=r"tables \['assessments'\] exist but no schema version"):
        Store.open(database_url, patient_hash_key=None, clock=ManualClock())


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "store.db"
    store = Store.open(f"sqlite:///{path}", patient_hash_key=None, clock=ManualClock())
    try:
        store.save_assessment(assessment(1))
        with store._engine.connect() as connection:  # the store's own pooled connection settings
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        store.close()
    assert path.exists()
    with sqlite3.connect(path) as plain:
        assert plain.execute("SELECT assessment_id FROM assessments").fetchall() == [("assessment-1",)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/x.db", "sqlite+pysqlite:///var/x.db"),
        ("sqlite:////abs/x.db", "sqlite+pysqlite:////abs/x.db"),
        ("postgresql://u@db:5432/cds", "postgresql+psycopg://u@db:5432/cds"),
        ("postgres://u@db/cds", "postgresql+psycopg://u@db/cds"),
        ("postgresql+psycopg://u@db/cds?sslmode=require", "postgresql+psycopg://u@db/cds?sslmode=require"),
    ],
)
def test_database_urls_are_mapped_to_their_drivers(given: str, expected: str) -> None:
    assert normalise_database_url(given).render_as_string() == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("sqlite://", "must name a SQLite file"),
        ("sqlite:///:memory:", "must name a SQLite file"),
        ("mysql://u@db/cds", "scheme 'mysql' is not supported"),
        ("postgresql+psycopg2://u@db/cds", "scheme 'postgresql\\+psycopg2' is not supported"),
        ("not a url", "DATABASE_URL must look like"),
    ],
)
def test_unusable_database_urls_are_refused_with_the_variable_named(given: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalise_database_url(given)


def test_an_unreachable_postgresql_fails_start_up_clearly() -> None:
    with pytest.raises(StoreError, match="could not open the database: OperationalError"):
        Store.open("postgresql://postgres@127.0.0.1:1/none", patient_hash_key=None, clock=ManualClock())
