"""The card's one line: the verdict and the procedure in a clinician's words, under 140 characters."""

from __future__ import annotations

from collections.abc import Sequence

from service.rules import Applicability, Decision, OrderJudgement
from service.wording.phrases import category_phrase, lower_first, procedure_title

SUMMARY_LIMIT = 140  # CDS Hooks: "<140 characters"


def card_summary(decision: Decision, judgement: OrderJudgement) -> str:
    """One line in a clinician's words: the verdict and the procedure, under 140 characters."""
    title = procedure_title(judgement)
    alternative = judgement.alternative  # always a better category; an equal option stays in the detail
    better = f"; consider {lower_first(alternative.rating.procedure.title)}" if alternative else ""
    if not judgement.applicable:
        verdict = f"{title}: no low back pain imaging criteria apply"
        candidates = [f"{verdict} to this order", title]
    else:
        verdict = f"{title}: {category_phrase(judgement.appropriateness)}"
        candidates = _applicable_summaries(decision, judgement, verdict, better)
    if decision.urgent:  # whatever the criteria: urgency is the patient's
        reason = " and ".join(decision.rules.flag_title(flag) for flag in decision.urgent_flags)
        instead = (
            f"{alternative.rating.procedure.title}, not {lower_first(title)}"
            if alternative is not None and alternative.urgent
            else None
        )
        candidates = [
            *([f"Urgent: {reason}. {instead}; consider emergency referral"] if instead else []),
            f"Urgent: {reason}. {verdict}; consider emergency referral",
            *([f"Urgent: {reason}. {instead}", f"Urgent evaluation needed. {instead}"] if instead else []),
            f"Urgent evaluation needed. {verdict}",
        ]
    elif decision.urgent_unchecked:  # it may be urgent: said on the card's one line, not only the detail
        unchecked = " and ".join(decision.rules.flag_title(flag) for flag in decision.urgent_unchecked)
        candidates = [
            *(f"{candidate}; {unchecked} could not be checked" for candidate in candidates),
            f"{verdict}; {unchecked} could not be checked",
            f"{verdict}; an urgent red flag could not be checked",
        ]
    return _first_fitting([*candidates, verdict])


def _applicable_summaries(
    decision: Decision, judgement: OrderJudgement, verdict: str, better: str
) -> list[str]:
    variants = [match.variant.title for match in decision.variants]
    if judgement.applicability is Applicability.UNDETERMINED:
        return [
            f"{verdict} if for low back pain; the diagnosis could not be confirmed from the record",
            f"{verdict} if for low back pain (diagnosis not confirmed)",
        ]
    if decision.conservative_care_first:
        if decision.urgent_unchecked:  # not "try conservative care first" while it may be urgent
            return [f"{verdict} for low back pain"]
        care = "" if decision.findings.therapy.documented else "; try conservative care first"
        if decision.unchecked_flags:  # never "no red flags" when some could not be checked
            return [
                f"{verdict} for low back pain; some red flags not checked{care}",
                f"{verdict}; some red flags could not be checked",
            ]
        if decision.weak_factors:  # a risk factor was found: not "no red flags", but none calling for imaging
            return [
                f"{verdict} for low back pain, no red flags requiring imaging{care}",
                f"{verdict}; no red flags requiring imaging",
            ]
        return [f"{verdict} for {variants[0]}{care}", f"{verdict} for low back pain without red flags"]
    return [
        *_trigger_summaries(decision, verdict, better),
        f"{verdict} for {' and '.join(variants)}{better}",
        f"{verdict} for {variants[0]}{better}",
        f"{verdict}{better}",
    ]


def _trigger_summaries(decision: Decision, verdict: str, better: str) -> list[str]:
    """Variants several red flags can trigger (V6, V7) named by what the patient has, e.g. "(history of
    cancer)"; the others by their title. Empty when no variant is such an umbrella."""
    rules = decision.rules
    titles = [match.variant.title for match in decision.variants if not match.variant.umbrella]
    triggers = rules.without_implied(
        dict.fromkeys(
            term for match in decision.variants if match.variant.umbrella for term in match.triggered_by
        )
    )
    if not triggers:
        return []
    found = ", ".join(rules.term_title(term) for term in triggers)
    if not titles:
        return [f"{verdict} ({found}){better}"]
    return [f"{verdict} for {' and '.join([*titles, found])}{better}"]


def _first_fitting(candidates: Sequence[str]) -> str:
    for candidate in candidates:
        if len(candidate) < SUMMARY_LIMIT:
            return candidate
    return candidates[-1][: SUMMARY_LIMIT - 2].rstrip() + "…"
