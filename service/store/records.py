"""What the store keeps: typed, frozen records the service fills from its decision and from feedback.

Nothing here may identify a patient. The patient reference, and the ordering clinician's, are turned
into keyed hashes by the store before they are written; evidence is kept as references (resource
type/id, code, date), never as the record's text; and of a clinician's override comment only the fact
that there was one is kept (the text can name the patient, see `FeedbackItem.user_comment_present`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fhir_mappings.model import Evidence


def _require_aware(value: datetime, field_name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field_name} must be timezone-aware, got {value.isoformat()}")


def iso_utc(value: datetime) -> str:
    """`2024-05-01T09:30:00Z` (microseconds only when there are some): the store's one time format."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


@dataclass(frozen=True, slots=True)
class EvidenceReference:
    """One fact a finding rests on, as a pointer into the patient's record (no display text)."""

    finding: str  # the red-flag id (or "episode", "therapy") this evidence supports
    reference: str  # "Condition/abc"
    system: str | None = None
    code: str | None = None
    date: str | None = None  # as written in the record; partial dates allowed

    @classmethod
    def of(cls, finding: str, evidence: Evidence) -> EvidenceReference:
        """The pointer part of a mapping's Evidence; its display text and detail are left behind."""
        return cls(
            finding=finding,
            reference=evidence.reference,
            system=evidence.system,
            code=evidence.code,
            date=evidence.date,
        )

    def points_at_the_patient(self) -> bool:
        # Any "Patient" path segment: relative, absolute and versioned references alike (erring safe).
        return "Patient" in self.reference.split("/")

    def as_json(self) -> dict[str, str]:
        """The stored form. Evidence on the Patient resource itself (age flags) keeps only its type: the
        Patient's id is what the patient key hides, and its one dated fact is the birth date."""
        if self.points_at_the_patient():
            return {"finding": self.finding, "reference": "Patient"}
        fields = {
            "finding": self.finding,
            "reference": self.reference,
            "system": self.system,
            "code": self.code,
            "date": self.date,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One judged imaging order and the card (if any) that carried the advice about it."""

    order_reference: str  # "ServiceRequest/<id>"
    order_code_system: str
    order_code: str
    procedure: str  # procedure id, e.g. "mri-lumbar-without-contrast"
    modality: str  # "XR" | "MRI" | "CT"
    appropriateness: str  # e.g. "usually-not-appropriate"
    pama_rating: str | None = None  # "appropriate" | "not-appropriate" | "no-criteria-apply"
    card_uuid: str | None = None  # None when no card was shown (e.g. quiet when appropriate)
    suggestion_uuids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """Everything needed to show, months later, what was advised, on what evidence, under which rules."""

    assessment_id: str
    created_at: datetime  # timezone-aware
    service_id: str  # the CDS service id, or "evaluate" for the REST endpoint
    rules_version: str
    latency_ms: float
    hook_instance: str | None = None
    client_iss: str | None = None
    patient_reference: str | None = None  # "Patient/<id>"; stored only as a keyed hash
    # The ordering clinician, CDS Hooks context.userId ("Practitioner/<id>"); stored only as a keyed hash.
    orderer_reference: str | None = None
    variants: tuple[str, ...] = ()  # ids of the ACR variants that applied
    red_flags: tuple[str, ...] = ()  # red-flag ids found present
    unchecked_red_flags: tuple[str, ...] = ()  # red-flag ids that could not be checked (unknown)
    evidence: tuple[EvidenceReference, ...] = ()
    data_gaps: tuple[str, ...] = ()  # data-gap ids
    urgent: bool = False
    orders: tuple[OrderRecord, ...] = ()

    def __post_init__(self) -> None:
        if not self.assessment_id:
            raise ValueError("assessment_id must not be empty")
        if not self.service_id:
            raise ValueError("service_id must not be empty")
        _require_aware(self.created_at, "created_at")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, got {self.latency_ms}")
        cards = [order.card_uuid for order in self.orders if order.card_uuid is not None]
        if len(cards) != len(set(cards)):
            raise ValueError("two orders of one assessment carry the same card uuid")


class FeedbackOutcome(StrEnum):
    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"


@dataclass(frozen=True, slots=True)
class OverrideReason:
    """The coded reason a clinician gave for not following a card."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One CDS Hooks feedback item: what the clinician did with a card.

    `user_comment_present` replaces the comment itself: a clinician's free text routinely names the
    patient or their circumstances, and the store is built to hold no PHI so that it can be kept for the
    retention period and shared with an imaging committee. The coded reason carries what a report needs.
    """

    card_uuid: str
    outcome: FeedbackOutcome
    outcome_timestamp: datetime  # timezone-aware
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: OverrideReason | None = None
    user_comment_present: bool = False

    def __post_init__(self) -> None:
        if not self.card_uuid:
            raise ValueError("card_uuid must not be empty")
        _require_aware(self.outcome_timestamp, "outcome_timestamp")

    def dedup_key(self, service_id: str, client_iss: str | None) -> str:
        """Equal for a repeat of the same item, so it is stored once however often it is sent."""
        reason = self.override_reason
        identity = [
            service_id,
            client_iss,
            self.card_uuid,
            self.outcome.value,
            iso_utc(self.outcome_timestamp),
            sorted(self.accepted_suggestions),
            [reason.system, reason.code] if reason else None,
        ]
        return hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """The acknowledgement of a feedback call, sent once the items are committed."""

    received: int
    linked: int
    unknown_cards: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"received": self.received, "linked": self.linked, "unknownCards": list(self.unknown_cards)}


@dataclass(frozen=True, slots=True)
class QuestionLink:
    """The red-flag questions offered with an assessment: kept until answered or expired."""

    assessment_id: str
    created_at: datetime
    expires_at: datetime
    asked: tuple[str, ...]  # red-flag ids
    findings: dict[str, Any]  # service.questions.snapshot: codes, references, dates; no record text

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "created_at")
        _require_aware(self.expires_at, "expires_at")
        if not self.asked:
            raise ValueError("a question link asks at least one question")


class AnswersSource(StrEnum):
    QUESTIONS_PAGE = "questions-page"  # /questions/{assessmentId}, from the card's link
    EVALUATE = "evaluate"  # a QuestionnaireResponse in the /evaluate Bundle


@dataclass(frozen=True, slots=True)
class AnswersRecord:
    """A clinician's answers as codes (red-flag id -> yes / no / unknown), the verdicts before and after."""

    assessment_id: str
    answered_at: datetime
    source: AnswersSource
    answers: tuple[tuple[str, str], ...]
    verdict_before: dict[str, Any]
    verdict_after: dict[str, Any]
    rules_version: str

    def __post_init__(self) -> None:
        _require_aware(self.answered_at, "answered_at")

    @property
    def changed(self) -> bool:
        """The answers changed the verdict on some order: its appropriateness or its urgency. A rating
        that was withheld for unchecked data and is now written is the same verdict, made final."""
        return _verdicts(self.verdict_before) != _verdicts(self.verdict_after)

    def row(self) -> dict[str, Any]:
        return {
            "assessment_id": self.assessment_id,
            "answered_at": self.answered_at,
            "source": self.source.value,
            "answers": [{"redFlag": flag, "answer": answer} for flag, answer in self.answers],
            "verdict_before": self.verdict_before,
            "verdict_after": self.verdict_after,
            "changed": self.changed,
            "rules_version": self.rules_version,
        }


def _verdicts(summary: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [(o.get("order"), o.get("appropriateness"), o.get("urgent")) for o in summary.get("orders", [])]
