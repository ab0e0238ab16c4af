"""Tolerant readers for raw FHIR JSON: wrong types read as absent, never raise."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Resource = Mapping[str, Any]
Coding = tuple[str | None, str | None, str | None]  # system, code, display


def is_object(value: Any) -> bool:
    """A JSON object. Parsed JSON gives plain dicts: test for those first, the ABC check is slow."""
    return type(value) is dict or isinstance(value, Mapping)


def as_dict(value: Any) -> Mapping[str, Any] | None:
    return value if is_object(value) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def child(resource: Any, *path: str) -> Any:
    """`child(r, "code", "text")` -> r["code"]["text"], or None when any step is missing or not an object."""
    # Called thousands of times per request: the plain-dict test is inlined (see `is_object`).
    current = resource
    for key in path:
        if type(current) is not dict and not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _text_field(resource: Any, key: str) -> str | None:
    """`as_text(child(resource, key))` for one key, without the generic path walk (hot path)."""
    if type(resource) is not dict and not isinstance(resource, Mapping):
        return None
    value = resource.get(key)
    return value if isinstance(value, str) and value.strip() else None


def resource_type(resource: Any) -> str | None:
    return _text_field(resource, "resourceType")


def resource_id(resource: Any) -> str | None:
    return _text_field(resource, "id")


def coding_list(concept: Any) -> list[Coding]:
    """The codings of a CodeableConcept (entries that are not objects are skipped)."""
    # The hottest reader of a record: every candidate resource's codes pass here, so the helpers are
    # inlined (same meaning as `as_list(child(concept, "coding"))`, then `as_text` on each field).
    if type(concept) is not dict and not isinstance(concept, Mapping):
        return []
    entries = concept.get("coding")
    if not isinstance(entries, list):
        return []
    return [
        (
            system if isinstance(system := coding.get("system"), str) and system.strip() else None,
            code if isinstance(code := coding.get("code"), str) and code.strip() else None,
            display if isinstance(display := coding.get("display"), str) and display.strip() else None,
        )
        for coding in entries
        if type(coding) is dict or isinstance(coding, Mapping)
    ]


def codings(concept: Any) -> Iterator[Coding]:
    """`coding_list` as an iterator, for `next(codings(concept), None)`."""
    return iter(coding_list(concept))


def concept_codes(concept: Any) -> set[str]:
    """Just the codes of a status-like CodeableConcept (clinicalStatus, verificationStatus)."""
    return {code for _, code, _ in codings(concept) if code}


def concept_text(concept: Any) -> str:
    """Text and coding displays of a CodeableConcept, lower-cased, for matching drug names."""
    parts = [as_text(child(concept, "text")) or ""]
    parts.extend(display or "" for _, _, display in codings(concept))
    return " ".join(parts).lower()


def reference_key(reference: Any) -> str | None:
    """`{"reference": "http://x/fhir/Condition/1/_history/2"}` -> "Condition/1"; contained "#a" stays "#a"."""
    text = _text_field(reference, "reference")
    if text is None:
        return None
    if text.startswith("#"):
        return text
    segments = text.split("/")
    if "_history" in segments:
        segments = segments[: segments.index("_history")]
    if len(segments) < 2 or not segments[-1] or not segments[-2]:
        return None
    return f"{segments[-2]}/{segments[-1]}"


def local_reference(resource: Resource) -> str:
    """ "Condition/abc", or just "Condition" when the record gave no id."""
    kind = resource_type(resource) or "Resource"
    identifier = resource_id(resource)
    return f"{kind}/{identifier}" if identifier else kind


def status_of(resource: Any) -> str | None:
    """The resource's `status` code, or None when missing or not a string."""
    return _text_field(resource, "status")
