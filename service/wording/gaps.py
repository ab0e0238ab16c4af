"""What could not be checked, in a clinician's words: the mappings' data gaps (codes and facts) as lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fhir_mappings.criteria import RED_FLAGS
from fhir_mappings.model import RED_FLAG_IDS, DataGap, GapKind, InputKind

# What each missing input is, and what it leaves unchecked.
_INPUTS: Mapping[InputKind, tuple[str, str]] = {
    InputKind.PATIENT: ("Patient record", "age (over 50, over 70)"),
    InputKind.CONDITIONS: (
        "Conditions (problem list and diagnoses)",
        "the low back pain episode and its duration, and the diagnosis-based red flags",
    ),
    InputKind.OBSERVATIONS: ("Observations", "fever (body temperature) and weight loss (body weight)"),
    InputKind.MEDICATIONS: ("medication records", "long-term corticosteroid use and osteoporosis treatment"),
    InputKind.PROCEDURES: (
        "Procedures",
        "prior lumbar surgery and physical therapy or spinal manipulation already given",
    ),
    InputKind.SERVICE_REQUESTS: (
        "therapy referrals (ServiceRequests)",
        "referrals for physical therapy or spinal manipulation",
    ),
}
_PROBLEMS: Mapping[str, str] = {
    "unreadable": "Records that failed FHIR validation were skipped (see data quality)",
    "undated": "Records without a date could not be placed in time",
    "unit": "Measurements without a known unit were not used",
    "implausible": "Measurements outside the physiological range were not used",
}
_OTHER_FINDINGS: Mapping[str, str] = {
    "age": "age",
    "episode": "the low back pain episode",
    "therapy": "physical therapy or spinal manipulation already given",
}
_DURATION_UNKNOWN = "how long symptoms have lasted could not be determined."


def _titles(affected: Sequence[str]) -> str:
    """What a gap leaves unchecked, in the order of the red-flag table, in words."""
    named = [RED_FLAGS[flag].description for flag in RED_FLAG_IDS if flag in affected]
    named += [words for finding, words in _OTHER_FINDINGS.items() if finding in affected]
    return ", ".join(named)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _unchecked_words(gap: DataGap) -> str:
    """What the missing input leaves unchecked: in the input's words, or, once the clinician has answered
    some of its questions, only what is still unchecked, with what was answered."""
    assert gap.input is not None
    if not gap.answered:
        return _INPUTS[gap.input][1]
    return f"{_titles(gap.affects)} (answered by the clinician: {_titles(gap.answered)})"


def _written(gap: DataGap) -> str:
    """ " (1970-03)": the birth date as written, when it is at hand (a re-judgement keeps none)."""
    return f" ({gap.birth_date})" if gap.birth_date else ""


def _what(gap: DataGap) -> str:
    match gap.kind:
        case GapKind.NOT_SUPPLIED:
            assert gap.input is not None
            name, unchecked = _INPUTS[gap.input][0], _unchecked_words(gap)
            return f"No {name} supplied: {unchecked} could not be checked."
        case GapKind.INCOMPLETE:
            assert gap.input is not None
            name, unchecked = _INPUTS[gap.input][0], _unchecked_words(gap)
            return (
                f"{_upper_first(name)} were only partly supplied (a page of results failed or was not "
                f"fetched): {unchecked} could not be fully checked."
            )
        case GapKind.PARTLY_READ:
            return ""  # said by its reasons alone
        case GapKind.RECORDS_SKIPPED:
            problem = _PROBLEMS.get(gap.problem or "", "Records were not used")
            return f"{problem} ({gap.count}): {_titles(gap.affects)} could not be fully checked."
        case GapKind.BIRTH_DATE_MISSING:
            return "The Patient has no birth date: age could not be checked."
        case GapKind.BIRTH_DATE_AFTER_ASSESSMENT:
            return f"The birth date{_written(gap)} is after the assessment date: age could not be checked."
        case GapKind.BIRTH_DATE_PARTIAL:
            youngest, oldest = gap.ages or (0, 0)
            return (
                f"The birth date is partial{_written(gap)}: the patient is {youngest} or {oldest} years "
                "old, so an age threshold between the two could not be checked."
            )
        case GapKind.NO_ACTIVE_LOW_BACK_PAIN:
            return f"No active low back pain diagnosis was found in the Conditions: {_DURATION_UNKNOWN}"
        case GapKind.EPISODE_ONSET_UNKNOWN:
            return f"The low back pain diagnosis has no onset or recorded date: {_DURATION_UNKNOWN}"


def gap_description(gap: DataGap) -> str:
    """One line: what is missing, what it leaves unchecked, and why it is missing when that is known."""
    what = _what(gap)
    if not gap.why:
        return what
    reasons = "; ".join(gap.why)
    return f"{what} Why: {reasons}." if what else f"{reasons}."
