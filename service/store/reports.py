"""The summary report: what was advised in a period, and what clinicians did with the cards.

The numbers an imaging committee or an ordering-clinician feedback report needs: orders per
appropriateness category, modality and procedure; assessments per ACR variant, red flag, unchecked red
flag and data gap; for cards shown, how many got feedback and how many were accepted or overridden, with
the coded override reasons. A card's outcome is its latest feedback item (by outcome timestamp), so a card
overridden and later accepted counts once, as accepted. Feedback counts with the assessment its card
belongs to (so rates describe the cards shown in the period); feedback on cards this service did not
issue is counted by when it was received. Free text is never part of the report.

An ordering-clinician report is the same report restricted to the assessments of one clinician's orders
(`OrdererFilter`, matched on the keyed hash stored in place of CDS Hooks `context.userId`). It is only
given for a clinician named in the request: the committee report never lists clinicians, because a list
of opaque keys tells a committee nothing and a key with its volume can be recognised. Feedback on cards
this service did not issue cannot be attributed to a clinician, so that count is left out of it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, select

from service.store import schema
from service.store.records import FeedbackOutcome, iso_utc

Summary = dict[str, Any]
DEFAULT_REPORT_DAYS = 30


class ReportParameterError(ValueError):
    """A report parameter cannot be used; `parameter` names it ("from", "to" or "orderer")."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


class ReportWindowError(ReportParameterError):
    """A report bound cannot be read; `parameter` names it ("from" or "to")."""


@dataclass(frozen=True, slots=True)
class OrdererFilter:
    """One ordering clinician's assessments only."""

    reference: str  # as the caller gave it ("Practitioner/123"); shown in the report, never stored
    key: str  # its keyed hash, as stored in `assessments.orderer_key`


def parse_bound(parameter: str, value: str, *, is_end: bool) -> datetime:
    """An ISO date (a whole day: `to=2024-05-31` includes the 31st) or datetime (UTC if no offset)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if is_end else start
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: past the ends of the calendar in UTC
        raise ReportWindowError(
            parameter,
            f"{parameter} must be an ISO date (2024-05-01) or date-time (2024-05-01T09:00:00Z), "
            f"got {value!r}",
        ) from None


def report_window(
    start_text: str | None, end_text: str | None, *, now: datetime, default_days: int = DEFAULT_REPORT_DAYS
) -> tuple[datetime, datetime]:
    """[start, end) from optional `from`/`to` texts; by default the `default_days` before `now`."""
    end = parse_bound("to", end_text, is_end=True) if end_text else now.astimezone(UTC)
    if start_text:
        start = parse_bound("from", start_text, is_end=False)
    else:
        try:
            start = end - timedelta(days=default_days)
        except OverflowError:
            raise ReportWindowError("to", f"to is too early for a {default_days}-day report") from None
    if start >= end:
        raise ReportWindowError("from", f"from ({iso_utc(start)}) must be before to ({iso_utc(end)})")
    return start, end


def _ranked(counter: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name, so reports read the same every time."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _nearest_rank(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


@dataclass(slots=True)
class _CardTally:
    shown: int = 0
    with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "shown": self.shown,
            "withFeedback": self.with_feedback,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "feedbackRate": _rate(self.with_feedback, self.shown),
            "acceptanceRate": _rate(self.accepted, self.with_feedback),
            "overrideRate": _rate(self.overridden, self.with_feedback),
        }


def summarise(
    connection: Connection, start: datetime, end: datetime, *, orderer: OrdererFilter | None = None
) -> Summary:
    """The report for assessments created in [start, end), of one ordering clinician if `orderer`."""
    if start >= end:
        raise ValueError("the report period must end after it starts")
    a, o, f = schema.assessments, schema.assessment_orders, schema.feedback
    in_period = and_(a.c.created_at >= start, a.c.created_at < end)
    if orderer is not None:
        in_period = and_(in_period, a.c.orderer_key == orderer.key)

    assessments = 0
    urgent = 0
    per_service: Counter[str] = Counter()
    per_variant: Counter[str] = Counter()
    per_flag: Counter[str] = Counter()
    per_unchecked: Counter[str] = Counter()
    per_gap: Counter[str] = Counter()
    latencies: list[float] = []
    for row in connection.execute(
        select(
            a.c.service_id,
            a.c.variants,
            a.c.red_flags,
            a.c.unchecked_red_flags,
            a.c.data_gaps,
            a.c.urgent,
            a.c.latency_ms,
        ).where(in_period)
    ).mappings():
        assessments += 1
        urgent += bool(row["urgent"])
        per_service[row["service_id"]] += 1
        # set(): a list naming an id twice still counts the assessment once.
        per_variant.update(set(row["variants"]))
        per_flag.update(set(row["red_flags"]))
        per_unchecked.update(set(row["unchecked_red_flags"]))
        per_gap.update(set(row["data_gaps"]))
        latencies.append(float(row["latency_ms"]))

    per_appropriateness: Counter[str] = Counter()
    per_pama: Counter[str] = Counter()
    per_modality: Counter[str] = Counter()
    per_procedure: Counter[str] = Counter()
    card_category: dict[str, str] = {}
    for row in connection.execute(
        select(o.c.appropriateness, o.c.pama_rating, o.c.modality, o.c.procedure, o.c.card_uuid)
        .join(a, a.c.assessment_id == o.c.assessment_id)
        .where(in_period)
    ).mappings():
        per_appropriateness[row["appropriateness"]] += 1
        per_pama[row["pama_rating"] or "none"] += 1
        per_modality[row["modality"]] += 1
        per_procedure[row["procedure"]] += 1
        if row["card_uuid"] is not None:
            card_category[row["card_uuid"]] = row["appropriateness"]

    latest = _latest_feedback_per_card(
        connection.execute(
            select(
                f.c.card_uuid,
                f.c.outcome,
                f.c.override_reason_system,
                f.c.override_reason_code,
                f.c.override_reason_display,
            )
            .join(a, a.c.assessment_id == f.c.assessment_id)
            .where(in_period)
            .order_by(f.c.outcome_timestamp, f.c.id)
        ).mappings()
    )
    cards = _CardTally(shown=len(card_category))
    per_category: dict[str, _CardTally] = {}
    for category in card_category.values():
        per_category.setdefault(category, _CardTally()).shown += 1
    reasons: Counter[tuple[str, str, str]] = Counter()
    overrides_without_reason = 0
    for card_uuid, item in latest.items():
        for tally in (cards, per_category.setdefault(card_category[card_uuid], _CardTally())):
            tally.with_feedback += 1
            if item["outcome"] == FeedbackOutcome.ACCEPTED:
                tally.accepted += 1
            else:
                tally.overridden += 1
        if item["outcome"] == FeedbackOutcome.OVERRIDDEN:
            if item["override_reason_code"] is None:
                overrides_without_reason += 1
            else:
                key = (item["override_reason_system"], item["override_reason_code"])
                reasons[(*key, item["override_reason_display"] or "")] += 1

    unlinked: dict[str, int] = {}
    if orderer is None:
        unlinked["feedbackOnUnknownCards"] = connection.execute(
            select(func.count())
            .select_from(f)
            .where(f.c.assessment_id.is_(None), f.c.received_at >= start, f.c.received_at < end)
        ).scalar_one()

    questions = _questions_tally(connection, in_period)
    latencies.sort()
    return {
        "from": iso_utc(start),
        "to": iso_utc(end),
        **({"orderer": orderer.reference} if orderer is not None else {}),
        "assessments": assessments,
        "urgentAssessments": urgent,
        "orders": sum(per_appropriateness.values()),
        "byService": _ranked(per_service),
        "byAppropriateness": _ranked(per_appropriateness),
        "byPamaRating": _ranked(per_pama),
        "byModality": _ranked(per_modality),
        "byProcedure": _ranked(per_procedure),
        "byVariant": _ranked(per_variant),
        "byRedFlag": _ranked(per_flag),
        "byUncheckedRedFlag": _ranked(per_unchecked),
        "byDataGap": _ranked(per_gap),
        "cards": cards.as_json(),
        "cardsByAppropriateness": {
            category: per_category[category].as_json() for category in sorted(per_category)
        },
        "overrideReasons": _merged_reasons(reasons),
        "overridesWithoutReason": overrides_without_reason,
        "questions": questions,
        **unlinked,
        "latencyMs": {
            "median": _nearest_rank(latencies, 0.5),
            "p95": _nearest_rank(latencies, 0.95),
            "max": latencies[-1],
        }
        if latencies
        else None,
    }


def _questions_tally(connection: Connection, in_period: Any) -> dict[str, Any]:
    """Red-flag questions: how often offered (a card's link), answered, and how often the answers changed
    the verdict; answers in `/evaluate` Bundles count as answered without an offer."""
    a, q, qa = schema.assessments, schema.question_links, schema.questionnaire_answers
    offered = connection.execute(
        select(func.count()).select_from(q.join(a, a.c.assessment_id == q.c.assessment_id)).where(in_period)
    ).scalar_one()
    answered = changed = 0
    per_source: Counter[str] = Counter()
    for row in connection.execute(
        select(qa.c.source, qa.c.changed).join(a, a.c.assessment_id == qa.c.assessment_id).where(in_period)
    ).mappings():
        answered += 1
        changed += bool(row["changed"])
        per_source[row["source"]] += 1
    page_answers = per_source.get("questions-page", 0)
    return {
        "offered": offered,
        "answered": answered,
        "answeredBySource": _ranked(per_source),
        "answerRate": _rate(page_answers, offered),
        "changedVerdict": changed,
        "changedVerdictRate": _rate(changed, answered),
    }


def _latest_feedback_per_card(rows: Iterable[RowMapping]) -> dict[str, RowMapping]:
    latest: dict[str, RowMapping] = {}
    for row in rows:  # ordered by outcome time, so the last one seen wins
        latest[row["card_uuid"]] = row
    return latest


def _merged_reasons(reasons: Counter[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """One entry per (system, code), shown with its most used display text."""
    counts: Counter[tuple[str, str]] = Counter()
    displays: dict[tuple[str, str], Counter[str]] = {}
    for (system, code, display), count in reasons.items():
        counts[(system, code)] += count
        displays.setdefault((system, code), Counter())[display] += count
    merged = []
    for (system, code), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        display = max(sorted(displays[(system, code)].items()), key=lambda item: item[1])[0]
        merged.append(
            {"system": system, "code": code, **({"display": display} if display else {}), "count": count}
        )
    return merged


def format_summary(summary: Summary) -> str:
    """The report as plain-text tables for a terminal."""
    whose = f" of orders by {summary['orderer']}" if "orderer" in summary else ""
    lines = [f"Assessments{whose} from {summary['from']} to {summary['to']}", ""]

    def table(title: str, rows: Iterable[tuple[str, str]]) -> None:
        rows = list(rows)
        lines.append(title)
        if not rows:
            lines.extend(["  (none)", ""])
            return
        width = max(len(label) for label, _ in rows)
        lines.extend(f"  {label.ljust(width)}  {value:>8}" for label, value in rows)
        lines.append("")

    def counts(title: str, key: str) -> None:
        table(title, ((label, str(count)) for label, count in summary[key].items()))

    def percent(rate: float | None) -> str:
        return "-" if rate is None else f"{rate * 100:.1f}%"

    totals = [
        ("assessments", str(summary["assessments"])),
        ("urgent assessments", str(summary["urgentAssessments"])),
        ("judged orders", str(summary["orders"])),
    ]
    if "feedbackOnUnknownCards" in summary:  # not in a clinician's report
        totals.append(("feedback on unknown cards", str(summary["feedbackOnUnknownCards"])))
    table("Totals", totals)
    counts("Orders by appropriateness", "byAppropriateness")
    counts("Orders by PAMA rating", "byPamaRating")
    counts("Orders by modality", "byModality")
    counts("Orders by procedure", "byProcedure")
    counts("Assessments by ACR variant", "byVariant")
    counts("Assessments by red flag present", "byRedFlag")
    counts("Assessments by red flag that could not be checked", "byUncheckedRedFlag")
    counts("Assessments by data gap", "byDataGap")
    card_blocks = [("all cards", summary["cards"]), *summary["cardsByAppropriateness"].items()]
    table(
        "Cards: shown / with feedback / accepted / overridden (acceptance, override rate)",
        (
            (
                label,
                f"{block['shown']} / {block['withFeedback']} / {block['accepted']} / {block['overridden']}"
                f"  ({percent(block['acceptanceRate'])}, {percent(block['overrideRate'])})",
            )
            for label, block in card_blocks
        ),
    )
    table(
        "Override reasons",
        [
            (f"{reason.get('display') or reason['code']} [{reason['code']}]", str(reason["count"]))
            for reason in summary["overrideReasons"]
        ]
        + [("no reason given", str(summary["overridesWithoutReason"]))],
    )
    asked = summary["questions"]
    table(
        "Red-flag questions",
        [
            ("offered on cards", str(asked["offered"])),
            ("answered (all sources)", str(asked["answered"])),
            ("answer rate (page answers / offered)", percent(asked["answerRate"])),
            ("answers that changed the verdict", str(asked["changedVerdict"])),
            ("  of answered", percent(asked["changedVerdictRate"])),
        ],
    )
    latency = summary["latencyMs"]
    if latency:
        table("Latency (ms)", [(name, f"{latency[name]:.1f}") for name in ("median", "p95", "max")])
    return "\n".join(lines).rstrip() + "\n"
