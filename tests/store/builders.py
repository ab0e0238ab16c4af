"""Assessment and feedback records for store tests, with defaults a test overrides by keyword."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, create_engine

from service.store import (
    AssessmentRecord,
    EvidenceReference,
    FeedbackItem,
    FeedbackOutcome,
    OrderRecord,
    OverrideReason,
)
from service.store.database import normalise_database_url

PATIENT_HASH_KEY = "test-patient-hash-key-0123456789abcdef"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

ORDER_SELECT = "lbp-imaging-order-select"
ORDER_SIGN = "lbp-imaging-order-sign"
CPT = "http://www.ama-assn.org/go/cpt"
OVERRIDE_SYSTEM = "https://lbp-imaging-cds.org/CodeSystem/override-reason"


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def order(number: int, **changes: Any) -> OrderRecord:
    base = OrderRecord(
        order_reference=f"ServiceRequest/order-{number}",
        order_code_system=CPT,
        order_code="72148",
        procedure="mri-lumbar-without-contrast",
        modality="MRI",
        appropriateness="usually-not-appropriate",
        pama_rating="not-appropriate",
        card_uuid=f"card-{number}",
        suggestion_uuids=(f"suggestion-{number}-a", f"suggestion-{number}-b"),
    )
    return replace(base, **changes)


def assessment(
    number: int, *, orders: tuple[OrderRecord, ...] | None = None, **changes: Any
) -> AssessmentRecord:
    base = AssessmentRecord(
        assessment_id=f"assessment-{number}",
        created_at=START + timedelta(minutes=number),
        service_id=ORDER_SIGN,
        rules_version="acr-lbp-2021.1",
        latency_ms=4.5,
        hook_instance=f"hook-instance-{number}",
        client_iss="https://ehr.example.org",
        patient_reference=f"Patient/patient-{number}",
        variants=("variant-1",),
        red_flags=(),
        unchecked_red_flags=("fever",),
        evidence=(),
        data_gaps=("observations-not-supplied",),
        urgent=False,
        orders=(order(number),) if orders is None else orders,
    )
    return replace(base, **changes)


def accepted(card: str, at: datetime, *suggestions: str) -> FeedbackItem:
    return FeedbackItem(
        card_uuid=card,
        outcome=FeedbackOutcome.ACCEPTED,
        outcome_timestamp=at,
        accepted_suggestions=suggestions or (f"{card}-suggestion",),
    )


def overridden(
    card: str, at: datetime, reason_code: str | None = None, *, comment: bool = False
) -> FeedbackItem:
    reason = (
        OverrideReason(system=OVERRIDE_SYSTEM, code=reason_code, display=f"Reason {reason_code}")
        if reason_code
        else None
    )
    return FeedbackItem(
        card_uuid=card,
        outcome=FeedbackOutcome.OVERRIDDEN,
        outcome_timestamp=at,
        override_reason=reason,
        user_comment_present=comment,
    )


def with_evidence() -> tuple[EvidenceReference, ...]:
    return (
        EvidenceReference(
            finding="cancer-history",
            reference="Condition/c1",
            system="http://snomed.info/sct",
            code="363346000",
            date="2019-04",
        ),
        EvidenceReference(finding="episode", reference="Condition/lbp"),
    )


@contextmanager
def database_connection(database_url: str) -> Iterator[Connection]:
    """A plain connection to the test database, to look at what the store wrote."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def run_together(jobs: list[Callable[[], None]]) -> list[BaseException]:
    """Start every job at the same moment on its own thread; the errors they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors
