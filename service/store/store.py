"""The assessment store: every judged order, the feedback on its card, and the JWT replay guard.

Thread-safe and multi-process-safe: each call takes its own pooled connection and its own transaction,
so gunicorn workers and threads can share one database without losing or duplicating records.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, RowMapping, Table, delete, func, insert, select, update
from sqlalchemy import String as SqlString
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from service.store import schema
from service.store.database import WRITE_TRANSACTION, create_store_engine
from service.store.migrations import UPGRADES, Upgrade, migrate
from service.store.records import (
    AnswersRecord,
    AssessmentRecord,
    FeedbackItem,
    FeedbackReceipt,
    QuestionLink,
    iso_utc,
)
from service.store.reports import OrdererFilter, ReportParameterError, Summary, summarise

logger = logging.getLogger("lbp.store")

Clock = Callable[[], datetime]
# Expired replay-guard rows are swept at most this often per process.
REPLAY_SWEEP_INTERVAL = timedelta(minutes=5)
# Rows deleted per transaction when purging, so a big purge never holds SQLite's write lock for long.
PURGE_BATCH = 500
# Domain separation: a clinician's key is the HMAC of this prefix + the reference, a patient's the HMAC of
# the bare reference, so under the one secret the two kinds of key can never be matched to each other.
ORDERER_KEY_PREFIX = b"orderer:"


class StoreError(RuntimeError):
    """The database could not be read or written (the message never carries record content)."""


class Store:
    """Assessments, feedback and the replay guard on one SQLAlchemy engine. Use `Store.open`."""

    def __init__(
        self,
        engine: Engine,
        *,
        patient_hash_key: str | None,
        clock: Clock,
        replay_grace: timedelta = timedelta(minutes=10),
    ) -> None:
        self._engine = engine
        self._patient_hash_key = patient_hash_key.encode() if patient_hash_key else None
        self._clock = clock
        self._replay_grace = replay_grace
        self._next_replay_sweep = clock()
        self._sweep_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        patient_hash_key: str | None,
        clock: Clock,
        replay_grace: timedelta = timedelta(minutes=10),
        upgrades: Sequence[Upgrade] = UPGRADES,
    ) -> Store:
        """Connect, create or migrate the schema, and return the store.

        `patient_hash_key` (CDS_PATIENT_HASH_KEY) keys the HMACs that stand in for the patient reference
        and for the ordering clinician (`patient_key`, `orderer_key`); without it neither is stored at all
        (records cannot be grouped per patient or clinician), because a hash without a secret would be
        reversible by trying every patient or practitioner id. Changing the key starts new groups: old
        records keep keys that the new one no longer matches.
        `replay_grace`: how long past its expiry a JWT id is remembered; must exceed the JWT leeway.
        `upgrades`: the schema steps (tests pass their own; the default is the release's).
        """
        engine = create_store_engine(database_url)
        try:
            version = migrate(engine, now=clock(), upgrades=upgrades)
        except SQLAlchemyError as error:
            engine.dispose()
            raise StoreError(f"could not open the database: {type(error).__name__}") from error
        except BaseException:
            engine.dispose()
            raise
        if not patient_hash_key:
            logger.warning(
                "CDS_PATIENT_HASH_KEY is not set: assessments are stored without a patient or orderer key, "
                "so reports cannot group them per patient or per ordering clinician"
            )
        logger.info("store opened", extra={"database": engine.dialect.name, "schema_version": version})
        return cls(engine, patient_hash_key=patient_hash_key, clock=clock, replay_grace=replay_grace)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def schema_version(self) -> int:
        """The schema version the database holds (a round trip: raises StoreError when unreachable)."""
        try:
            with self._engine.connect() as connection:
                version = connection.execute(select(func.max(schema.schema_migrations.c.version))).scalar()
        except SQLAlchemyError as error:
            raise StoreError(f"database unreachable: {type(error).__name__}") from error
        return int(version or 0)

    def after_fork(self) -> None:
        """In a forked worker: forget the parent's pooled connections without closing them under it."""
        self._engine.dispose(close=False)

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_TRANSACTION: True})
                with connection.begin():
                    yield connection
        except SQLAlchemyError as error:
            # The type only: a driver message can quote the statement's parameters.
            raise StoreError(
                f"database {'write' if write else 'read'} failed: {type(error).__name__}"
            ) from error

    def _insert_ignoring_duplicates(self, table: Table) -> Insert:
        """INSERT ... ON CONFLICT DO NOTHING, which both databases support."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    # -- assessments ----------------------------------------------------------------------------

    def _keyed_hash(self, message: bytes) -> str | None:
        if self._patient_hash_key is None:
            return None
        return hmac.new(self._patient_hash_key, message, hashlib.sha256).hexdigest()

    def patient_key(self, patient_reference: str | None) -> str | None:
        """The keyed hash stored in place of the patient reference (None without a key or reference)."""
        return self._keyed_hash(patient_reference.encode()) if patient_reference else None

    def orderer_key(self, orderer_reference: str | None) -> str | None:
        """The keyed hash stored in place of the ordering clinician's reference (CDS Hooks
        `context.userId`, e.g. "Practitioner/123"); None without a key or reference. Surrounding
        whitespace is ignored, so the report's `orderer=` matches however it was typed."""
        reference = (orderer_reference or "").strip()
        return self._keyed_hash(ORDERER_KEY_PREFIX + reference.encode()) if reference else None

    def save_assessment(
        self,
        record: AssessmentRecord,
        *,
        question_link: QuestionLink | None = None,
        answers: AnswersRecord | None = None,
    ) -> None:
        """The assessment and one row per judged order, in one transaction, with the questions offered
        on its card (`question_link`) or the answers it was judged with (`answers`, from /evaluate)."""
        row = {
            "assessment_id": record.assessment_id,
            "created_at": record.created_at,
            "service_id": record.service_id,
            "hook_instance": record.hook_instance,
            "client_iss": record.client_iss,
            "patient_key": self.patient_key(record.patient_reference),
            "orderer_key": self.orderer_key(record.orderer_reference),
            "variants": list(record.variants),
            "red_flags": list(record.red_flags),
            "unchecked_red_flags": list(record.unchecked_red_flags),
            "evidence": [item.as_json() for item in record.evidence],
            "data_gaps": list(record.data_gaps),
            "urgent": record.urgent,
            "rules_version": record.rules_version,
            "latency_ms": record.latency_ms,
        }
        order_rows = [
            {
                "assessment_id": record.assessment_id,
                "order_index": index,
                "card_uuid": order.card_uuid,
                "order_reference": order.order_reference,
                "order_code_system": order.order_code_system,
                "order_code": order.order_code,
                "procedure": order.procedure,
                "modality": order.modality,
                "appropriateness": order.appropriateness,
                "pama_rating": order.pama_rating,
                "suggestion_uuids": list(order.suggestion_uuids),
            }
            for index, order in enumerate(record.orders)
        ]
        _check_lengths(schema.assessments, row)
        for order_row in order_rows:
            _check_lengths(schema.assessment_orders, order_row)
        if question_link is not None:
            self._sweep_replay_guard(force=False)  # also drops the findings of expired links
        with self._transaction(write=True) as connection:
            connection.execute(insert(schema.assessments), row)
            if order_rows:
                connection.execute(insert(schema.assessment_orders), order_rows)
            if question_link is not None:
                connection.execute(
                    insert(schema.question_links),
                    {
                        "assessment_id": question_link.assessment_id,
                        "created_at": question_link.created_at,
                        "expires_at": question_link.expires_at,
                        "asked": list(question_link.asked),
                        "findings": question_link.findings,
                        "answered_at": None,
                    },
                )
            if answers is not None:
                connection.execute(insert(schema.questionnaire_answers), answers.row())

    # -- red-flag questions ----------------------------------------------------------------------

    def question_link(self, assessment_id: str) -> dict[str, Any] | None:
        """The questions offered with an assessment: `asked`, `expires_at`, `answered_at` and the kept
        `findings` (None once answered or expired), or None when none were offered."""
        table = schema.question_links
        with self._transaction(write=False) as connection:
            row = connection.execute(select(table).where(table.c.assessment_id == assessment_id)).mappings()
            found = row.first()
        return dict(found) if found is not None else None

    def save_answers(self, record: AnswersRecord) -> bool:
        """Accept the answers once: claim the link (not answered, not expired), drop its kept findings,
        and store the answers with both verdicts, in one transaction. False when the link was already
        answered or has expired (nothing is stored then), across every process on this database."""
        table = schema.question_links
        with self._transaction(write=True) as connection:
            claimed = connection.execute(
                update(table)
                .where(
                    table.c.assessment_id == record.assessment_id,
                    table.c.answered_at.is_(None),
                    table.c.expires_at > record.answered_at,
                )
                .values(answered_at=record.answered_at, findings=None)
                .returning(table.c.assessment_id)
            ).first()
            if claimed is None:
                return False
            connection.execute(insert(schema.questionnaire_answers), record.row())
        return True

    def get_assessment(self, assessment_id: str) -> dict[str, Any] | None:
        """The record, its orders, and the feedback on each order's card, as JSON-ready camelCase."""
        a, o, f = schema.assessments, schema.assessment_orders, schema.feedback
        q, qa = schema.question_links, schema.questionnaire_answers
        with self._transaction(write=False) as connection:
            row = connection.execute(select(a).where(a.c.assessment_id == assessment_id)).mappings().first()
            if row is None:
                return None
            orders = list(
                connection.execute(
                    select(o).where(o.c.assessment_id == assessment_id).order_by(o.c.order_index)
                ).mappings()
            )
            feedback_rows = list(
                connection.execute(
                    select(f)
                    .where(f.c.assessment_id == assessment_id)
                    .order_by(f.c.outcome_timestamp, f.c.id)
                ).mappings()
            )
            link = (
                connection.execute(
                    select(q.c.asked, q.c.expires_at, q.c.answered_at).where(
                        q.c.assessment_id == assessment_id
                    )
                )
                .mappings()
                .first()
            )
            answered = (
                connection.execute(select(qa).where(qa.c.assessment_id == assessment_id)).mappings().first()
            )
        by_card: dict[str, list[dict[str, Any]]] = {}
        for item in feedback_rows:
            by_card.setdefault(item["card_uuid"], []).append(_feedback_json(item))
        return {
            "assessmentId": row["assessment_id"],
            "createdAt": iso_utc(row["created_at"]),
            "serviceId": row["service_id"],
            **_present(hookInstance=row["hook_instance"], clientIss=row["client_iss"]),
            **_present(patientKey=row["patient_key"], ordererKey=row["orderer_key"]),
            "rulesVersion": row["rules_version"],
            "latencyMs": row["latency_ms"],
            "urgent": row["urgent"],
            "variants": row["variants"],
            "redFlags": row["red_flags"],
            "uncheckedRedFlags": row["unchecked_red_flags"],
            "evidence": row["evidence"],
            "dataGaps": row["data_gaps"],
            "orders": [
                {
                    **_present(cardUuid=order["card_uuid"]),
                    "orderReference": order["order_reference"],
                    "orderCode": {"system": order["order_code_system"], "code": order["order_code"]},
                    "procedure": order["procedure"],
                    "modality": order["modality"],
                    "appropriateness": order["appropriateness"],
                    **_present(pamaRating=order["pama_rating"]),
                    "suggestionUuids": order["suggestion_uuids"],
                    "feedback": by_card.get(order["card_uuid"], []) if order["card_uuid"] else [],
                }
                for order in orders
            ],
            **_present(questions=_questions_json(link), answers=_answers_json(answered)),
        }

    # -- feedback -------------------------------------------------------------------------------

    def save_feedback(
        self, service_id: str, items: Sequence[FeedbackItem], *, client_iss: str | None = None
    ) -> FeedbackReceipt:
        """Store each item once (a repeat is recognised and not stored again), linked by card uuid.

        A card counts as known when this service gave it to this client (`client_iss`, None when
        authentication is off): one client's feedback cannot attach itself to another client's advice.
        An unknown card is kept, flagged `unknown_card`, and named in the receipt.
        """
        received_at = self._clock()
        o, a = schema.assessment_orders, schema.assessments
        cards = sorted({item.card_uuid for item in items})
        with self._transaction(write=True) as connection:
            known: dict[str, str] = {}
            if cards:
                found = connection.execute(
                    select(o.c.card_uuid, o.c.assessment_id)
                    .join(a, a.c.assessment_id == o.c.assessment_id)
                    .where(
                        o.c.card_uuid.in_(cards),
                        a.c.service_id == service_id,
                        a.c.client_iss.is_not_distinct_from(client_iss),
                    )
                )
                known = {row[0]: row[1] for row in found}
            rows = [
                _feedback_row(service_id, client_iss, item, known.get(item.card_uuid), received_at)
                for item in items
            ]
            for row in rows:
                _check_lengths(schema.feedback, row)
            if rows:
                connection.execute(self._insert_ignoring_duplicates(schema.feedback), rows)
        unknown = tuple(dict.fromkeys(item.card_uuid for item in items if item.card_uuid not in known))
        linked = sum(1 for item in items if item.card_uuid in known)
        return FeedbackReceipt(received=len(items), linked=linked, unknown_cards=unknown)

    # -- reports and retention ------------------------------------------------------------------

    def summary(self, start: datetime, end: datetime, *, orderer: str | None = None) -> Summary:
        """Counts and rates for assessments created in [start, end); see `reports.summarise`.

        `orderer` (a clinician's reference as CDS Hooks `context.userId` carries it) restricts the
        report to that clinician's assessments. ReportParameterError when it is blank, or when no hash
        key is configured (then no clinician was recorded, and none could be matched).
        """
        selected = None if orderer is None else self._orderer_filter(orderer)
        with self._transaction(write=False) as connection:
            return summarise(connection, start, end, orderer=selected)

    def _orderer_filter(self, orderer: str) -> OrdererFilter:
        if not orderer.strip():
            raise ReportParameterError(
                "orderer",
                "orderer must be the ordering clinician's reference as the EHR sends it in CDS Hooks "
                "context.userId, e.g. Practitioner/123",
            )
        key = self.orderer_key(orderer)
        if key is None:
            raise ReportParameterError(
                "orderer",
                "a report per ordering clinician needs CDS_PATIENT_HASH_KEY: clinicians are stored only "
                "as a keyed hash, so without the key none was recorded and none can be matched",
            )
        return OrdererFilter(reference=orderer.strip(), key=key)

    def purge_older_than(self, cutoff: datetime) -> int:
        """Delete assessments created before `cutoff` (with their orders and feedback), feedback on
        unknown cards received before it, and expired JWT ids. Returns the number of assessments and
        unlinked feedback items deleted. Works in batches so hook calls are never held up for long."""
        a, o, f = schema.assessments, schema.assessment_orders, schema.feedback
        q, qa = schema.question_links, schema.questionnaire_answers
        deleted = 0
        while True:
            with self._transaction(write=True) as connection:
                ids = list(
                    connection.execute(
                        select(a.c.assessment_id).where(a.c.created_at < cutoff).limit(PURGE_BATCH)
                    ).scalars()
                )
                if not ids:
                    break
                connection.execute(delete(f).where(f.c.assessment_id.in_(ids)))
                connection.execute(delete(q).where(q.c.assessment_id.in_(ids)))
                connection.execute(delete(qa).where(qa.c.assessment_id.in_(ids)))
                connection.execute(delete(o).where(o.c.assessment_id.in_(ids)))
                connection.execute(delete(a).where(a.c.assessment_id.in_(ids)))
                deleted += len(ids)
        while True:
            with self._transaction(write=True) as connection:
                feedback_ids = list(
                    connection.execute(
                        select(f.c.id)
                        .where(f.c.assessment_id.is_(None), f.c.received_at < cutoff)
                        .limit(PURGE_BATCH)
                    ).scalars()
                )
                if not feedback_ids:
                    break
                connection.execute(delete(f).where(f.c.id.in_(feedback_ids)))
                deleted += len(feedback_ids)
        self._sweep_replay_guard(force=True)
        logger.info("purged records", extra={"cutoff": iso_utc(cutoff), "deleted": deleted})
        return deleted

    # -- JWT replay guard -----------------------------------------------------------------------

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """True the first time this issuer's token id is seen, across every process on this database.

        False when it was seen before, or when it is too long to record (such a token is refused).
        """
        row = {"issuer": issuer, "jti": jti, "expires_at": expires_at}
        if _too_long(schema.jwt_replay, row):
            return False
        self._sweep_replay_guard(force=False)
        with self._transaction(write=True) as connection:
            # RETURNING rather than rowcount, which psycopg reports as -1 for this statement.
            inserted = connection.execute(
                self._insert_ignoring_duplicates(schema.jwt_replay).returning(schema.jwt_replay.c.jti), row
            )
            return inserted.first() is not None

    def _sweep_replay_guard(self, *, force: bool) -> None:
        now = self._clock()
        with self._sweep_lock:
            if not force and now < self._next_replay_sweep:
                return
            self._next_replay_sweep = now + REPLAY_SWEEP_INTERVAL
        table = schema.jwt_replay
        links = schema.question_links
        with self._transaction(write=True) as connection:
            connection.execute(delete(table).where(table.c.expires_at < now - self._replay_grace))
            # The findings kept for a questions link go when it expires, answered or not.
            connection.execute(
                update(links)
                .where(links.c.expires_at <= now, links.c.findings.is_not(None))
                .values(findings=None)
            )


def _feedback_row(
    service_id: str,
    client_iss: str | None,
    item: FeedbackItem,
    assessment_id: str | None,
    received_at: datetime,
) -> dict[str, Any]:
    reason = item.override_reason
    return {
        "dedup_key": item.dedup_key(service_id, client_iss),
        "card_uuid": item.card_uuid,
        "assessment_id": assessment_id,
        "service_id": service_id,
        "client_iss": client_iss,
        "outcome": item.outcome.value,
        "accepted_suggestions": list(item.accepted_suggestions),
        "override_reason_system": reason.system if reason else None,
        "override_reason_code": reason.code if reason else None,
        "override_reason_display": reason.display if reason else None,
        "user_comment_present": item.user_comment_present,
        "outcome_timestamp": item.outcome_timestamp,
        "received_at": received_at,
        "unknown_card": assessment_id is None,
    }


def _feedback_json(row: RowMapping) -> dict[str, Any]:
    reason = (
        {
            "system": row["override_reason_system"],
            "code": row["override_reason_code"],
            **_present(display=row["override_reason_display"]),
        }
        if row["override_reason_code"] is not None
        else None
    )
    return {
        "outcome": row["outcome"],
        "outcomeTimestamp": iso_utc(row["outcome_timestamp"]),
        "receivedAt": iso_utc(row["received_at"]),
        **_present(acceptedSuggestions=row["accepted_suggestions"] or None, overrideReason=reason),
        "userCommentProvided": row["user_comment_present"],
    }


def _questions_json(row: RowMapping | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "asked": row["asked"],
        "expiresAt": iso_utc(row["expires_at"]),
        **_present(answeredAt=iso_utc(row["answered_at"]) if row["answered_at"] else None),
    }


def _answers_json(row: RowMapping | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "answeredAt": iso_utc(row["answered_at"]),
        "source": row["source"],
        "answers": row["answers"],
        "verdictBefore": row["verdict_before"],
        "verdictAfter": row["verdict_after"],
        "changed": row["changed"],
        "rulesVersion": row["rules_version"],
    }


def _present(**fields: Any) -> dict[str, Any]:
    """Only the fields that have a value: optional fields are left out of answers, never null."""
    return {key: value for key, value in fields.items() if value is not None}


def _too_long(table: Table, row: Mapping[str, Any]) -> str | None:
    """The first string column whose value exceeds its declared length (PostgreSQL would refuse it)."""
    for name, value in row.items():
        column_type = table.c[name].type
        limit = column_type.length if isinstance(column_type, SqlString) else None
        if isinstance(value, str) and limit is not None and len(value) > limit:
            return f"{table.name}.{name} is longer than {limit} characters"
    return None


def _check_lengths(table: Table, row: Mapping[str, Any]) -> None:
    problem = _too_long(table, row)
    if problem:
        raise ValueError(problem)
