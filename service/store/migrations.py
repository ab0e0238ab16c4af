"""Schema versions, applied at start-up under a lock, recorded in `schema_migrations`.

Why versioned Python steps rather than Alembic: Alembic is not a dependency, the schema is six small tables,
and the steps must run inside the same locked transaction on SQLite and PostgreSQL alike; a step is a
function of a SQLAlchemy Connection, so it can use portable DDL (`Table.create`, `Column` types) or
dialect-specific SQL where it must.

How it works (the approach Alembic recommends for new databases, "create_all, then stamp"):
- an empty database gets the current schema from `schema.metadata` in one step, and every version is
  recorded as applied;
- an existing database gets, in order, the steps above its highest recorded version.
So a schema change is: edit `schema.py`, and append an `Upgrade` that brings a database of the previous
version to the new one (tests/store checks a fresh database and the recorded versions agree).

Several gunicorn workers or replicas may start at once: PostgreSQL serialises them with a
transaction-level advisory lock, SQLite with BEGIN IMMEDIATE; PostgreSQL and SQLite both have
transactional DDL, so a failed step leaves nothing half-applied.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)

from service.store import schema
from service.store.database import WRITE_TRANSACTION

logger = logging.getLogger("lbp.store")

BASELINE_VERSION = 1
BASELINE_DESCRIPTION = "assessments, assessment orders, feedback and JWT replay tables"
# Same key in every process that opens this database; advisory locks are per database.
_ADVISORY_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"lbp-imaging-cds schema migrations").digest()[:8], "big", signed=True
)


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One step from version `version - 1` to `version`."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _add_orderer_key(connection: Connection) -> None:
    """v2: who ordered, as a keyed hash, so a report can be given per ordering clinician.

    Plain SQL frozen at this version (not the current `schema`), valid on SQLite and PostgreSQL. Rows
    written before it keep NULL: their orderer was never recorded. Additive, so a v1 release still
    running beside a v2 one during a rolling upgrade keeps writing (leaving the column NULL).
    """
    connection.execute(text("ALTER TABLE assessments ADD COLUMN orderer_key VARCHAR(64)"))
    connection.execute(text("CREATE INDEX ix_assessments_orderer_key ON assessments (orderer_key)"))


# Steps after the baseline, in order, numbered from 2.
def _add_questionnaire_tables(connection: Connection) -> None:
    """v3: the red-flag questions offered with an assessment, and the answers with the verdicts.

    The tables as they were at this version, on a MetaData of their own (so a later edit of `schema`
    cannot change what this step creates). New tables only: a v2 release beside it keeps working.
    """
    frozen = MetaData()
    Table("assessments", frozen, Column("assessment_id", String(schema.ID), primary_key=True))
    Table(
        "question_links",
        frozen,
        Column(
            "assessment_id",
            String(schema.ID),
            ForeignKey("assessments.assessment_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("created_at", schema.UtcDateTime, nullable=False),
        Column("expires_at", schema.UtcDateTime, nullable=False),
        Column("asked", schema.JsonText, nullable=False),
        Column("findings", schema.JsonText),
        Column("answered_at", schema.UtcDateTime),
        Index("ix_question_links_expires_at", "expires_at"),
    ).create(connection)
    Table(
        "questionnaire_answers",
        frozen,
        Column(
            "assessment_id",
            String(schema.ID),
            ForeignKey("assessments.assessment_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("answered_at", schema.UtcDateTime, nullable=False),
        Column("source", String(schema.ID), nullable=False),
        Column("answers", schema.JsonText, nullable=False),
        Column("verdict_before", schema.JsonText, nullable=False),
        Column("verdict_after", schema.JsonText, nullable=False),
        Column("changed", Boolean, nullable=False),
        Column("rules_version", String(schema.CODE), nullable=False),
        Index("ix_questionnaire_answers_answered_at", "answered_at"),
    ).create(connection)


UPGRADES: tuple[Upgrade, ...] = (
    Upgrade(2, "assessments.orderer_key: keyed hash of the ordering clinician", _add_orderer_key),
    Upgrade(
        3,
        "question_links and questionnaire_answers: red-flag questions and answers",
        _add_questionnaire_tables,
    ),
)


class MigrationError(RuntimeError):
    """The database cannot be brought to this code's schema version."""


def latest_version(upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    return upgrades[-1].version if upgrades else BASELINE_VERSION


def _check_sequence(upgrades: Sequence[Upgrade]) -> None:
    expected = list(range(BASELINE_VERSION + 1, BASELINE_VERSION + 1 + len(upgrades)))
    if [step.version for step in upgrades] != expected:
        raise MigrationError(f"upgrade versions must run {expected} in order")


def migrate(engine: Engine, *, now: datetime, upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    """Bring the database to the latest version; returns the version it is at afterwards."""
    _check_sequence(upgrades)
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_TRANSACTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            return _migrate_locked(connection, now, upgrades)


def _migrate_locked(connection: Connection, now: datetime, upgrades: Sequence[Upgrade]) -> int:
    schema.schema_migrations.create(connection, checkfirst=True)
    current = connection.execute(select(func.max(schema.schema_migrations.c.version))).scalar()
    if current is None:
        existing = set(inspect(connection).get_table_names()) & {t.name for t in schema.APPLICATION_TABLES}
        if existing:
            raise MigrationError(
                f"tables {sorted(existing)} exist but no schema version is recorded: this database was not "
                "created by lbp-imaging-cds, or its schema_migrations table was removed"
            )
        schema.metadata.create_all(connection, tables=list(schema.APPLICATION_TABLES))
        recorded = [(BASELINE_VERSION, BASELINE_DESCRIPTION)]
        recorded += [(step.version, f"{step.description} (in the baseline)") for step in upgrades]
        connection.execute(
            insert(schema.schema_migrations),
            [{"version": v, "description": d, "applied_at": now} for v, d in recorded],
        )
        version = latest_version(upgrades)
        logger.info("database schema created", extra={"schema_version": version})
        return version
    if current > latest_version(upgrades):
        # A newer release migrated first (rolling upgrade); steps are additive, so keep running.
        logger.warning(
            "database schema is newer than this release",
            extra={"schema_version": current, "release_schema_version": latest_version(upgrades)},
        )
        return int(current)
    for step in upgrades:
        if step.version > current:
            step.apply(connection)
            connection.execute(
                insert(schema.schema_migrations),
                {"version": step.version, "description": step.description, "applied_at": now},
            )
            logger.info("database schema upgraded", extra={"schema_version": step.version})
    return latest_version(upgrades)
