"""Persistence: every assessment, the clinician's feedback, reports, retention and the JWT replay guard.

`Store.open(DATABASE_URL, patient_hash_key=..., clock=...)` works on a SQLite file (the default) or
PostgreSQL (several replicas); the schema is created or migrated at start-up.
"""

from service.store.records import (
    AnswersRecord,
    AnswersSource,
    AssessmentRecord,
    EvidenceReference,
    FeedbackItem,
    FeedbackOutcome,
    FeedbackReceipt,
    OrderRecord,
    OverrideReason,
    QuestionLink,
)
from service.store.reports import (
    ReportParameterError,
    ReportWindowError,
    Summary,
    format_summary,
    report_window,
)
from service.store.store import Store, StoreError

__all__ = [
    "AnswersRecord",
    "AnswersSource",
    "AssessmentRecord",
    "EvidenceReference",
    "FeedbackItem",
    "FeedbackOutcome",
    "FeedbackReceipt",
    "OrderRecord",
    "OverrideReason",
    "QuestionLink",
    "ReportParameterError",
    "ReportWindowError",
    "Store",
    "StoreError",
    "Summary",
    "format_summary",
    "report_window",
]
