"""The tables, portable across SQLite and PostgreSQL (SQLAlchemy Core).

Lists (variants, red flags, evidence...) are JSON text: the same on both databases, and they are only
ever read whole. Times are UTC: `timestamptz` on PostgreSQL, ISO text on SQLite (which sorts correctly
because every value is written in UTC with the same format).

No column may hold a name, birth date, address, identifier or free text from the patient's record; a
test in tests/store checks the column names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only accepts timezone-aware datetimes")
        utc = value.astimezone(UTC)
        # SQLite keeps text without an offset: write UTC wall time, read it back as UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text (portable; read and written whole)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


# Lengths for what the service itself produces or has already checked (ids, codes of its rules, feedback
# fields the endpoint bounds). What an EHR sends unchecked (order references and codes, hookInstance) is
# TEXT, so an odd value can never make the audit write fail; the request body limit bounds it.
ID = 64
REFERENCE = 256
CODE = 128
URI = 512

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(ID), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("service_id", String(ID), nullable=False),
    Column("hook_instance", Text),
    Column("client_iss", String(URI)),
    Column("patient_key", String(64)),  # HMAC-SHA256 hex of the patient reference
    # HMAC-SHA256 hex of the ordering clinician (CDS Hooks context.userId), under a key derived for
    # clinicians (see Store.orderer_key); NULL for /evaluate, or without CDS_PATIENT_HASH_KEY. Schema v2.
    Column("orderer_key", String(64)),
    Column("variants", JsonText, nullable=False),
    Column("red_flags", JsonText, nullable=False),
    Column("unchecked_red_flags", JsonText, nullable=False),
    Column("evidence", JsonText, nullable=False),
    Column("data_gaps", JsonText, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("rules_version", String(CODE), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("ix_assessments_created_at", "created_at"),
    Index("ix_assessments_patient_key", "patient_key"),
    Index("ix_assessments_orderer_key", "orderer_key"),
)


def assessment_key() -> Column[str]:
    """`assessment_id` as (part of) the key of a table whose rows belong to one assessment and go with it."""
    return Column(
        "assessment_id",
        String(ID),
        ForeignKey("assessments.assessment_id", ondelete="CASCADE"),
        primary_key=True,
    )


assessment_orders = Table(
    "assessment_orders",
    metadata,
    assessment_key(),
    Column("order_index", Integer, primary_key=True, autoincrement=False),
    Column("card_uuid", String(CODE), unique=True),
    Column("order_reference", Text, nullable=False),
    Column("order_code_system", Text, nullable=False),
    Column("order_code", Text, nullable=False),
    Column("procedure", String(CODE), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("appropriateness", String(CODE), nullable=False),
    Column("pama_rating", String(CODE)),
    Column("suggestion_uuids", JsonText, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),  # see FeedbackItem.dedup_key
    Column("card_uuid", String(CODE), nullable=False),
    Column(
        "assessment_id",
        String(ID),
        ForeignKey("assessments.assessment_id", ondelete="CASCADE"),
    ),  # NULL when the card is unknown to us
    Column("service_id", String(ID), nullable=False),
    Column("client_iss", String(URI)),  # who sent it (None when authentication is off)
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JsonText, nullable=False),
    Column("override_reason_system", String(URI)),
    Column("override_reason_code", String(CODE)),
    Column("override_reason_display", String(URI)),
    Column("user_comment_present", Boolean, nullable=False),
    Column("outcome_timestamp", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("unknown_card", Boolean, nullable=False),
    Index("ix_feedback_card_uuid", "card_uuid"),
    Index("ix_feedback_assessment_id", "assessment_id"),
    Index("ix_feedback_received_at", "received_at"),
)

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("issuer", String(URI), primary_key=True),
    Column("jti", String(REFERENCE), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_jwt_replay_expires_at", "expires_at"),
)

# An assessment's red-flag questions (schema v3): which were asked, until when the link is valid, and the
# findings it was judged on (codes, references and dates, no record text), kept only until the questions
# are answered or the link expires, so the answers re-judge what the clinician saw.
question_links = Table(
    "question_links",
    metadata,
    assessment_key(),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("asked", JsonText, nullable=False),  # red-flag ids
    Column("findings", JsonText),  # NULL once answered or expired
    Column("answered_at", UtcDateTime),
    Index("ix_question_links_expires_at", "expires_at"),
)

# A clinician's answers and the verdict they led to (schema v3), linked to the assessment: the answers as
# codes (red-flag id -> yes / no / unknown, never free text), the verdict before and after.
questionnaire_answers = Table(
    "questionnaire_answers",
    metadata,
    assessment_key(),
    Column("answered_at", UtcDateTime, nullable=False),
    Column("source", String(ID), nullable=False),  # "questions-page" or "evaluate"
    Column("answers", JsonText, nullable=False),
    Column("verdict_before", JsonText, nullable=False),
    Column("verdict_after", JsonText, nullable=False),
    Column("changed", Boolean, nullable=False),
    Column("rules_version", String(CODE), nullable=False),
    Index("ix_questionnaire_answers_answered_at", "answered_at"),
)

# The tables the service owns (everything but the migrations ledger).
APPLICATION_TABLES = (
    assessments,
    assessment_orders,
    feedback,
    jwt_replay,
    question_links,
    questionnaire_answers,
)
