"""Engines for `DATABASE_URL`: a SQLite file (the default) or PostgreSQL through psycopg 3.

SQLite: WAL (readers never block the writer), a busy timeout (writers queue instead of failing),
foreign keys on, `synchronous=FULL` (a committed audit record survives a power cut), and SQLAlchemy
emits BEGIN itself so that writes start with `BEGIN IMMEDIATE` (they take the write lock up front and wait
for it, instead of failing when a read transaction tries to upgrade). One connection per thread from
SQLAlchemy's pool. WAL needs a local disk: do not put the file on NFS.

PostgreSQL: SQLAlchemy's QueuePool with pre-ping, so several gunicorn threads share a few connections
and a database restart costs one retry, not a failed request.

Either way, a connection opened before a fork (gunicorn's preload_app) is never used in the child.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from service.config import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_POOL_SIZE = 5
POSTGRES_MAX_OVERFLOW = 10
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (see module doc).
WRITE_TRANSACTION = "lbp_write_transaction"


def normalise_database_url(database_url: str) -> URL:
    """The SQLAlchemy URL for `DATABASE_URL`; `postgresql://` and `postgres://` mean psycopg 3."""
    try:
        url = make_url(database_url.strip())
    except exc.ArgumentError:
        raise ConfigError(
            "DATABASE_URL must look like sqlite:///path/to/file.db or postgresql://user@host:5432/db"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:") or "mode=memory" in str(url.query):
            raise ConfigError(
                "DATABASE_URL must name a SQLite file (sqlite:///var/lbp-imaging-cds.db): an in-memory "
                "database would lose every record when the process stops"
            )
        return url.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg")
    raise ConfigError(
        f"DATABASE_URL scheme {url.drivername!r} is not supported: use sqlite:///<file> or "
        "postgresql://<user>@<host>:<port>/<database> (psycopg 3)"
    )


def create_store_engine(database_url: str) -> Engine:
    url = normalise_database_url(database_url)
    engine = _sqlite_engine(url) if url.get_backend_name() == "sqlite" else _postgres_engine(url)
    _never_share_connections_across_fork(engine)
    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL, retrying "database is locked": SQLite refuses the switch at once, without calling the
    busy handler, while another connection is switching a new database at the same moment (workers
    starting together on a fresh file)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _sqlite_engine(url: URL) -> Engine:
    assert url.database is not None  # normalise_database_url refused the in-memory forms
    Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own transaction handling is off: SQLAlchemy emits BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_TRANSACTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {"application_name": "lbp-imaging-cds"}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
    return create_engine(
        url,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args=connect_args,
    )


def _never_share_connections_across_fork(engine: Engine) -> None:
    """A forked child (a gunicorn worker) starts with an empty pool instead of the parent's sockets.

    `dispose(close=False)` is SQLAlchemy's documented way: the parent keeps its connections, the child
    never touches them. A weak reference, so a closed store's engine can still be garbage collected.
    """
    engine_ref = weakref.ref(engine)

    def _forget_parent_connections() -> None:
        child_engine = engine_ref()
        if child_engine is not None:
            child_engine.dispose(close=False)

    os.register_at_fork(after_in_child=_forget_parent_connections)
