"""The CDS Hooks 2.0 feedback envelope, checked strictly: every error names the item and field, e.g.
`feedback[1].outcome`. The clinician's `userComment` is checked but dropped here: it is free text that can
name the patient (see `service.store.records.FeedbackItem`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from service.errors import bad_request
from service.store import FeedbackItem, FeedbackOutcome, OverrideReason
from service.store.schema import CODE, URI

MAX_ITEMS = 500
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, as openapi.yaml's pattern
MAX_SUGGESTIONS_PER_ITEM = 50
# RFC 3339 date-time (section 5.6): a full date, a full time and an offset; `T` or a space between.
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


# A Coding system: an absolute URI (RFC 3986 scheme, then no spaces or controls), as openapi.yaml says.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[!-~]+")


def parse_feedback(body: Any) -> list[FeedbackItem]:
    """The feedback items of a request body, or a 400 naming the first thing that is wrong."""
    if not isinstance(body, dict):
        raise bad_request('the body must be a JSON object: {"feedback": [...]}')
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise bad_request("feedback must be a non-empty array of feedback items", "feedback")
    if len(items) > MAX_ITEMS:
        raise bad_request(f"feedback lists {len(items)} items; at most {MAX_ITEMS} per call", "feedback")
    return [_parse_item(item, f"feedback[{index}]") for index, item in enumerate(items)]


def _text(item: dict[str, Any], key: str, where: str, *, max_length: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{key} must be a non-empty string", f"{where}.{key}")
    if len(value) > max_length:
        raise bad_request(f"{key} is longer than {max_length} characters", f"{where}.{key}")
    if _CONTROL.search(value):  # control characters (Unicode Cc): PostgreSQL refuses NUL in text
        raise bad_request(f"{key} holds control characters", f"{where}.{key}")
    return value.strip()


def _parse_item(item: Any, where: str) -> FeedbackItem:
    if not isinstance(item, dict):
        raise bad_request("each feedback item must be a JSON object", where)
    card = _text(item, "card", where, max_length=CODE)
    outcome_text = item.get("outcome")
    if outcome_text not in (FeedbackOutcome.ACCEPTED, FeedbackOutcome.OVERRIDDEN):
        raise bad_request(
            f"outcome must be 'accepted' or 'overridden', got {_shown(outcome_text)}", f"{where}.outcome"
        )
    outcome = FeedbackOutcome(outcome_text)
    suggestions = _accepted_suggestions(item, outcome, where)
    reason, comment_present = _override_reason(item, outcome, where)
    return FeedbackItem(
        card_uuid=card,
        outcome=outcome,
        outcome_timestamp=parse_rfc3339(item.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
        accepted_suggestions=suggestions,
        override_reason=reason,
        user_comment_present=comment_present,
    )


def _accepted_suggestions(item: dict[str, Any], outcome: FeedbackOutcome, where: str) -> tuple[str, ...]:
    location = f"{where}.acceptedSuggestions"
    value = item.get("acceptedSuggestions")
    if outcome is FeedbackOutcome.OVERRIDDEN:
        if value not in (None, []):
            raise bad_request("acceptedSuggestions is only allowed when outcome is 'accepted'", location)
        return ()
    if not isinstance(value, list) or not value:
        raise bad_request(
            "acceptedSuggestions is required when outcome is 'accepted': a non-empty array of {\"id\": ...}",
            location,
        )
    if len(value) > MAX_SUGGESTIONS_PER_ITEM:
        raise bad_request(f"acceptedSuggestions lists more than {MAX_SUGGESTIONS_PER_ITEM} items", location)
    ids = []
    for index, suggestion in enumerate(value):
        if not isinstance(suggestion, dict):
            raise bad_request(
                'each accepted suggestion must be an object {"id": ...}', f"{location}[{index}]"
            )
        ids.append(_text(suggestion, "id", f"{location}[{index}]", max_length=CODE))
    return tuple(dict.fromkeys(ids))


def _override_reason(
    item: dict[str, Any], outcome: FeedbackOutcome, where: str
) -> tuple[OverrideReason | None, bool]:
    """The coded reason and whether a comment was given; the comment's text is dropped here."""
    location = f"{where}.overrideReason"
    value = item.get("overrideReason")
    if value is None or value == {}:
        return None, False
    if outcome is FeedbackOutcome.ACCEPTED:
        raise bad_request("overrideReason is only allowed when outcome is 'overridden'", location)
    if not isinstance(value, dict):
        raise bad_request("overrideReason must be an object {reason: Coding, userComment}", location)
    comment = value.get("userComment")
    if comment is not None and not isinstance(comment, str):
        raise bad_request("userComment must be a string", f"{location}.userComment")
    coding = value.get("reason")
    reason = None
    if coding is not None:
        if not isinstance(coding, dict):
            raise bad_request("reason must be a Coding object {system, code, display}", f"{location}.reason")
        system = _text(coding, "system", f"{location}.reason", max_length=URI)
        if not _ABSOLUTE_URI.fullmatch(system):
            raise bad_request("system must be an absolute URI", f"{location}.reason.system")
        code = _text(coding, "code", f"{location}.reason", max_length=CODE)
        display = (
            _text(coding, "display", f"{location}.reason", max_length=URI)
            if coding.get("display") is not None
            else None
        )
        reason = OverrideReason(system=system, code=code, display=display)
    return reason, bool(comment and comment.strip())


def parse_rfc3339(value: Any, location: str) -> datetime:
    """An RFC 3339 date-time with its offset (`2021-12-11T10:05:31Z`), or a 400 naming `location`."""
    name = location.rsplit(".", 1)[-1]
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise bad_request(
            f"{name} must be an RFC 3339 date-time with an offset, e.g. 2021-12-11T10:05:31Z; "
            f"got {_shown(value)}",
            location,
        )
    day, time, fraction, offset = match.groups()
    # Python reads at most microseconds; RFC 3339 allows any number of fraction digits.
    micro = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        # In UTC at once: an offset that carries the moment past year 1 or 9999 is out of range too.
        return datetime.fromisoformat(f"{day}T{time}{micro}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(f"{name} is not a valid date-time: {_shown(value)}", location) from None


def _shown(value: Any) -> str:
    """The offending value, shortened, for an error message."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
