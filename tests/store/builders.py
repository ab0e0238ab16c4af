"""Assessment and feedback records for store tests, with defaults a test overrides by keyword."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text

from service.store import (
    AssessmentRecord,
    EvidenceReference,
    FeedbackItem,
    FeedbackOutcome,
    OrderRecord,
    OverrideReason,
)
from service.store.database import normalise_database_url

EXAMPLE_HOOK_REQUEST = Path(__file__).resolve().parents[2] / "examples" / "order-sign-lumbar-mri.json"
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


def all_text_in_database(database_url: str) -> str:
    """Every value of every column of every row of every table, as one string (to search for what must
    not be there)."""
    parts: list[str] = []
    with database_connection(database_url) as connection:
        for table in inspect(connection).get_table_names():
            parts.extend(repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}")))  # noqa: S608
    return "\n".join(parts)


def hook_request(*, user_id: str | None = None, lumbar_xray_too: bool = False) -> dict[str, Any]:
    """The shipped order-sign example (one lumbar MRI) under a new hookInstance; optionally by another
    user (CDS Hooks context.userId) and with a lumbar X-ray ordered too."""
    request: dict[str, Any] = json.loads(EXAMPLE_HOOK_REQUEST.read_text(encoding="utf-8"))
    request["hookInstance"] = str(uuid.uuid4())
    if user_id is not None:
        request["context"]["userId"] = user_id
    if lumbar_xray_too:
        entries = request["context"]["draftOrders"]["entry"]
        xray = copy.deepcopy(entries[0])
        xray["resource"]["id"] = "draft-xr-1"
        xray["resource"]["code"] = {
            "coding": [
                {"system": "http://www.ama-assn.org/go/cpt", "code": "72100", "display": "X-ray lumbar spine"}
            ]
        }
        entries.append(xray)
    return request


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
