"""Why a prefetch key could not be had, in a clinician's words (no server detail, no PHI).

The codes are `service.fetch.GatherResult` reasons; `<how>-and-<why>` codes say how prefetch failed and
why no fetch helped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from fhir_mappings.model import DataGap, GapKind, InputKind, input_gap_id

_NO_FETCH = {
    "no-fhirServer": "the EHR granted no FHIR server access",
    "no-fhirAuthorization": "the EHR granted no FHIR server access",
    "no-access-token": "the EHR granted no FHIR server access",
    "malformed-access-token": "the FHIR access token was unusable",
    "unsupported-token-type": "the FHIR access token was unusable",
    "untrusted-fhirServer": (
        "the fhirServer the EHR named is not trusted for this client (not on its allowlist), so nothing was "
        "fetched from it"
    ),
    "template-not-fillable": "the query could not be built from the context",
}
_PREFETCH = {
    "not-prefetched": "it was not prefetched",
    "prefetch-failed": "the EHR's prefetch of it failed",
}
_FETCH_FAILED = {
    "deadline": "the EHR's FHIR server did not answer in time",
    "timeout": "the EHR's FHIR server did not answer in time",
    "too-large": "the EHR's FHIR server answered with more data than the service accepts",
    "connection-failed": "the EHR's FHIR server could not be reached",
    "tls-error": "the EHR's FHIR server could not be reached securely",
}
_TRUNCATED = {
    "page-limit": "only the first pages of the result were read",
    "resource-limit": "the result held more resources than the service reads",
    "next-link-other-origin": "the rest of the result was on another server and was not read",
}


def missing_reason(reason: str) -> str:
    """One `GatherResult.missing` reason code in words."""
    how, _, why = reason.partition("-and-")
    if why:
        return (
            f"{_PREFETCH.get(how, 'it was not prefetched')} and {_NO_FETCH.get(why, 'could not be fetched')}"
        )
    if reason in _NO_FETCH:  # no fetch was tried: not the server's fault
        return _NO_FETCH[reason]
    if reason.startswith("http-"):
        return f"the EHR's FHIR server answered with an error (HTTP {reason.removeprefix('http-')})"
    return _FETCH_FAILED.get(reason, "the EHR's FHIR server gave an unusable answer")


def what_would_help(reasons: Sequence[str]) -> str:
    """The 412's advice: trust the server for an untrusted one, else prefetch or grant FHIR access."""
    if any(reason.endswith("untrusted-fhirServer") for reason in reasons):
        return "prefetch them, or add that FHIR server to this client's fhir_servers in the clients file"
    return "prefetch them or grant fhirServer and fhirAuthorization"


def truncated_reason(reason: str) -> str:
    """One `GatherResult.truncated` reason code in words."""
    return _TRUNCATED.get(reason, "the result was cut short")


def why_inputs_missing(
    missing: Mapping[str, str],
    truncated: Mapping[str, str],
    labels: Mapping[str, str],
    kinds: Mapping[str, InputKind],
) -> dict[InputKind, list[str]]:
    """Per input, why its queries could not be read or were read only in part."""
    why: dict[InputKind, list[str]] = {}
    for key, reason in sorted(missing.items()):
        why.setdefault(kinds[key], []).append(f"{labels.get(key, key)}: {missing_reason(reason)}")
    for key, reason in sorted(truncated.items()):
        why.setdefault(kinds[key], []).append(f"{labels.get(key, key)}: {truncated_reason(reason)}")
    return why


def explain_gaps(
    gaps: tuple[DataGap, ...], why: Mapping[InputKind, list[str]] | Mapping[InputKind, tuple[str, ...]]
) -> tuple[DataGap, ...]:
    """Add to each input's gap why that input is missing or partial, so the card has one line per input."""
    explained: list[DataGap] = []
    unmatched = {kind: tuple(reasons) for kind, reasons in why.items()}
    for gap in gaps:
        if gap.input in unmatched and gap.kind in (GapKind.NOT_SUPPLIED, GapKind.INCOMPLETE):
            explained.append(replace(gap, why=unmatched.pop(gap.input)))
        else:
            explained.append(gap)
    # A reason with no gap of its own (the input was read in part but still proved complete enough).
    explained.extend(
        DataGap(input_gap_id(kind, GapKind.PARTLY_READ), GapKind.PARTLY_READ, input=kind, why=reasons)
        for kind, reasons in unmatched.items()
    )
    return tuple(explained)
