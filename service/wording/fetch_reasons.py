"""Why a prefetch key could not be had, in a clinician's words (no server detail, no PHI).

The codes are `service.fetch.GatherResult` reasons; `<how>-and-<why>` codes say how prefetch failed and
why no fetch helped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from fhir_mappings.model import DataGap, InputKind

_NO_FETCH = {
    "no-fhirServer": "the EHR granted no FHIR server access",
    "no-fhirAuthorization": "the EHR granted no FHIR server access",
    "no-access-token": "the EHR granted no FHIR server access",
    "malformed-access-token": "the FHIR access token was unusable",
    "unsupported-token-type": "the FHIR access token was unusable",
    "untrusted-fhirServer": "the FHIR server is not on this client's allowlist",
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
    if reason.startswith("http-"):
        return f"the EHR's FHIR server answered with an error (HTTP {reason.removeprefix('http-')})"
    return _FETCH_FAILED.get(reason, "the EHR's FHIR server gave an unusable answer")


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


def _gap_name(kind: InputKind) -> str:
    # As `fhir_mappings.findings` names its input gaps: `<kind>-not-supplied` / `<kind>-incomplete`.
    return kind.name.lower().replace("_", "-")


def explain_gaps(
    gaps: tuple[DataGap, ...], why: Mapping[InputKind, list[str]] | Mapping[InputKind, tuple[str, ...]]
) -> tuple[DataGap, ...]:
    """Add to each input's gap why that input is missing or partial, so the card has one line per input."""
    explained: list[DataGap] = []
    unmatched = {kind: list(reasons) for kind, reasons in why.items()}
    for gap in gaps:
        kind = next(
            (
                k
                for k in unmatched
                if gap.id in (f"{_gap_name(k)}-not-supplied", f"{_gap_name(k)}-incomplete")
            ),
            None,
        )
        if kind is None:
            explained.append(gap)
            continue
        reasons = "; ".join(unmatched.pop(kind))
        explained.append(replace(gap, description=f"{gap.description} Why: {reasons}."))
    # A reason with no gap of its own (the input was read in part but still proved complete enough).
    explained.extend(
        DataGap(id=f"{_gap_name(kind)}-partly-read", description=f"{'; '.join(reasons)}.")
        for kind, reasons in unmatched.items()
    )
    return tuple(explained)
