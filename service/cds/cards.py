"""From a decision to the CDS Hooks answer: one card per judged order, suggestions and system actions.

Card rules kept here (CDS Hooks 2.0 and the CDS Hooks Sandbox's quirks): summary under 140 characters;
`uuid` on every card and suggestion; `selectionBehavior: at-most-one` whenever there are suggestions;
every action has a `description`; `delete` names `ServiceRequest/<id>`; `create`/`update` carry a whole
resource; an `update` keeps the order's codings and carries the Argonaut PAMA rating (a replacement with
no rating to give is a `delete` of the draft and a `create` of a new one); optional fields are left out,
never empty. System actions go both top level (2.0) and in `extension.systemActions`, the only
place the Sandbox reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_mappings.model import Evidence, ImagingOrder, RedFlag
from service.rules import (
    Alternative,
    Applicability,
    Appropriateness,
    Decision,
    OrderJudgement,
    PamaRating,
    Procedure,
    RatingWithheld,
)
from service.rules.model import Citation, ProcedureCode

EXTENSION_KEY = "lbp-imaging-cds"
PAMA_RATING_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
# Every Argonaut PAMA extension starts so; a re-rated order drops the previous consult's extensions.
_PAMA_EXTENSION_PREFIX = "http://fhir.org/argonaut/Extension/pama-rating"
OVERRIDE_REASON_SYSTEM = "https://lbp-imaging-cds.org/CodeSystem/override-reason"
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("red-flag-not-recorded", "Red flag present but not recorded in the chart"),
    ("conservative-care-tried", "Conservative care already tried"),
    ("surgical-planning", "Needed for surgical or interventional planning"),
    ("specialist-request", "Requested by a specialist"),
    ("patient-preference", "Patient preference"),
)
# Critical cards: the reasons a clinician has for not following the urgent advice as given.
URGENT_OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("mri-contraindicated-or-unavailable", "MRI contraindicated or not available in time"),
    ("sent-to-emergency-department", "Patient sent to the emergency department"),
    ("spine-surgeon-request", "Study requested by a spine surgeon"),
    ("urgent-finding-ruled-out", "Urgent finding ruled out on examination"),
)
# ServiceRequest.priority codes at least as pressing as "urgent": an urgent replacement keeps them.
_URGENT_PRIORITIES = frozenset({"urgent", "asap", "stat"})
SUMMARY_LIMIT = 140  # CDS Hooks: "<140 characters"

_SYSTEM_NAMES = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}
_MARKDOWN_SPECIAL = str.maketrans({char: f"\\{char}" for char in "\\`*_{}[]()<>#+!|~"})


class SuggestionKind(StrEnum):
    REPLACE = "replace"
    CANCEL = "cancel"
    PHYSICAL_THERAPY = "physical-therapy"


@dataclass(frozen=True, slots=True)
class SuggestionId:
    uuid: str
    kind: SuggestionKind
    label: str


@dataclass(frozen=True, slots=True)
class CardIds:
    """What the store needs to link feedback to an order: the card's uuid and its suggestions'."""

    card: str
    suggestions: tuple[SuggestionId, ...] = ()


@dataclass(frozen=True, slots=True)
class HookResponse:
    body: dict[str, Any]  # {"cards": [...], "systemActions": [...], "extension": {"systemActions": [...]}}
    card_ids: Mapping[str, CardIds]  # order reference ("ServiceRequest/<id>") -> ids


# Shared with the /evaluate answer, so both give the same values for the same decision. ------------------


def order_verdict(decision: Decision, judgement: OrderJudgement, *, assessment_id: str) -> dict[str, Any]:
    """The card's `lbp-imaging-cds` extension: the machine-readable verdict on one order."""
    verdict: dict[str, Any] = {
        "assessmentId": assessment_id,
        "order": judgement.order.reference,
        "modality": judgement.order.modality,
        "procedure": judgement.order.procedure,
        "appropriateness": judgement.appropriateness.value,
        "urgent": decision.urgent,
    }
    if judgement.applicable and decision.variants:
        verdict["variants"] = list(decision.variant_ids())
    if decision.red_flags:
        verdict["redFlags"] = list(decision.red_flag_ids())
    verdict["rulesVersion"] = decision.rules_version
    return verdict


def card_indicator(decision: Decision, judgement: OrderJudgement) -> str:
    if decision.urgent:
        return "critical"
    if judgement.appropriateness is Appropriateness.USUALLY_NOT_APPROPRIATE:
        return "warning"
    return "info"


def _procedure_title(judgement: OrderJudgement) -> str:
    if judgement.procedure is not None:
        return judgement.procedure.title
    return judgement.order.coding.display or "This lumbar imaging order"


def _phrase(appropriateness: Appropriateness) -> str:
    return appropriateness.value.replace("-", " ")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def card_summary(decision: Decision, judgement: OrderJudgement) -> str:
    """One line in a clinician's words: the verdict and the procedure, under 140 characters."""
    title = _procedure_title(judgement)
    alternative = judgement.alternative  # always a better category; an equal option stays in the detail
    better = f"; consider {_lower_first(alternative.rating.procedure.title)}" if alternative else ""
    if not judgement.applicable:
        verdict = f"{title}: no low back pain imaging criteria apply"
        candidates = [f"{verdict} to this order", title]
    else:
        verdict = f"{title}: {_phrase(judgement.appropriateness)}"
        candidates = _applicable_summaries(decision, judgement, verdict, better)
    if decision.urgent:  # whatever the criteria: urgency is the patient's
        reason = " and ".join(decision.rules.flag_title(flag) for flag in decision.urgent_flags)
        instead = (
            f"{alternative.rating.procedure.title}, not {_lower_first(title)}"
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


# System actions and suggestion resources. -----------------------------------------------------------------


def rated_service_request(
    resource: Mapping[str, Any], rating: PamaRating | None, *, assessment_id: str
) -> dict[str, Any]:
    """The ServiceRequest exactly as sent, with the Argonaut PAMA rating and consult id added.

    Extensions of an earlier consult are replaced, not repeated; nothing else changes. With no rating
    (none can be determined), the earlier consult's extensions are only removed. The copy is shallow:
    the answer shares the unchanged parts with the input, and neither is changed afterwards.
    """
    rated = dict(resource)
    existing = rated.get("extension")
    kept = [
        extension
        for extension in (existing if isinstance(existing, list) else [])
        if not (
            isinstance(extension, dict) and str(extension.get("url", "")).startswith(_PAMA_EXTENSION_PREFIX)
        )
    ]
    if rating is None:
        if kept:
            rated["extension"] = kept
        else:
            rated.pop("extension", None)
        return rated
    rated["extension"] = [
        *kept,
        {
            "url": PAMA_RATING_EXTENSION,
            "valueCodeableConcept": {"coding": [{"system": PAMA_RATING_SYSTEM, "code": rating.value}]},
        },
        {"url": PAMA_CONSULT_ID_EXTENSION, "valueUri": f"urn:uuid:{assessment_id}"},
    ]
    return rated


def _can_act_on(order: ImagingOrder) -> bool:
    """An order can be updated or deleted only when the client gave it an id."""
    return bool(order.resource_id) and bool(order.resource)


def system_actions(decision: Decision, *, assessment_id: str) -> list[dict[str, Any]]:
    """An `update` of each judged draft order adding its rating.

    None where no rating can be attached (no id) or determined (Argonaut PAMA: "where no rating can be
    determined, none is produced"): the card then shows the provisional verdict and why it was withheld.
    """
    return [
        {
            "type": "update",
            "description": f"Record the appropriateness rating ({judgement.pama_rating.value}) on the order",
            "resource": rated_service_request(
                judgement.order.resource, judgement.pama_rating, assessment_id=assessment_id
            ),
        }
        for judgement in decision.orders
        if _can_act_on(judgement.order) and judgement.rating_withheld is None
    ]


def _coding(code: ProcedureCode) -> dict[str, str]:
    return {"system": code.system, "code": code.code, "display": code.display}


def _with_procedure(order: ImagingOrder, procedure: Procedure, *, urgent: bool) -> dict[str, Any]:
    """The order with the recommended procedure's code, keeping the reason and everything else.

    An urgent study is made at least `urgent`: a routine slot weeks away would defeat the advice.
    """
    code = procedure.code_for(order.coding.system)
    replaced = dict(order.resource)
    replaced["code"] = {"coding": [_coding(code)], "text": procedure.title}
    if urgent and replaced.get("priority") not in _URGENT_PRIORITIES:
        replaced["priority"] = "urgent"
    return replaced


# What identifies the draft being replaced: a new draft carries none of it.
_DRAFT_IDENTITY = ("id", "meta", "identifier")


def _replacement_actions(
    order: ImagingOrder,
    procedure: Procedure,
    rating: PamaRating | None,
    *,
    assessment_id: str,
    urgent: bool,
    cancel: dict[str, Any],
) -> list[dict[str, Any]]:
    """Change the order to `procedure`: an `update` carrying its rating, or, with no rating to give,
    cancel the draft and create a new one.

    The CDS Hooks Sandbox throws on an `update` without the PAMA rating, and a rating must not be
    claimed where none can be determined; a `create` needs none.
    """
    title = _lower_first(procedure.title)
    priority = ", priority urgent" if urgent else ""
    replaced = _with_procedure(order, procedure, urgent=urgent)
    if rating is not None:
        return [
            {
                "type": "update",
                "description": f"Change the order to {title}{priority}",
                "resource": rated_service_request(replaced, rating, assessment_id=assessment_id),
            }
        ]
    new_draft = {key: value for key, value in replaced.items() if key not in _DRAFT_IDENTITY}
    new_draft["status"] = "draft"
    return [
        cancel,
        {
            "type": "create",
            "description": f"Create a draft order for {title}{priority}",
            # Without the earlier consult's rating: it was about the cancelled order.
            "resource": rated_service_request(new_draft, None, assessment_id=assessment_id),
        },
    ]


def _physical_therapy_referral(decision: Decision, order: ImagingOrder) -> dict[str, Any]:
    """A draft referral for the same patient and encounter, for the order's reason."""
    referral = decision.rules.conservative_care.referral
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": str(order.resource.get("intent") or "order"),
        "code": {"coding": [_coding(code) for code in referral.codes], "text": referral.text},
    }
    for field in ("subject", "encounter", "requester", "reasonCode", "reasonReference"):
        value = order.resource.get(field)
        if value:
            resource[field] = value
    return resource


def _suggestions(
    decision: Decision, judgement: OrderJudgement, *, assessment_id: str
) -> list[tuple[SuggestionKind, dict[str, Any]]]:
    """Suggestions (without uuids) when the order is not the best choice.

    Replace it with the better (or, when urgent, the urgent) study. Cancelling, alone or for a physical
    therapy referral, only for low back pain without red flags (V1/V2): with red flags the better test is
    the advice, and a card that is urgent, or may be (an urgent red flag unchecked), never suggests doing
    nothing.
    """
    order = judgement.order
    alternative = judgement.alternative  # a better category, or the urgent study
    # Where no criteria apply, only the urgent study (urgency is the patient's, whatever the order).
    offered = judgement.applicable or (alternative is not None and alternative.urgent)
    if not offered or not _can_act_on(order):
        return []
    suggestions: list[tuple[SuggestionKind, dict[str, Any]]] = []
    undetermined = judgement.applicability is Applicability.UNDETERMINED
    cancel = {
        "type": "delete",
        "description": f"Cancel the draft order for {_lower_first(_procedure_title(judgement))}",
        "resourceId": order.reference,
    }
    if alternative is not None:
        better = _lower_first(alternative.rating.procedure.title)
        # Appropriate whatever could not be checked (unchecked data only raises categories), unless it is
        # not known whether the criteria apply at all. The urgent variants apply whatever the low back
        # pain diagnosis, so the urgent study's rating stands even then.
        rated = alternative.urgent or not undetermined
        rating = alternative.rating.appropriateness.pama_rating if rated else None
        label = f"Order {better} instead"
        suggestions.append(
            (
                SuggestionKind.REPLACE,
                {
                    "label": f"Urgent: {_lower_first(label)}" if alternative.urgent else label,
                    "isRecommended": True,
                    "actions": _replacement_actions(
                        order,
                        alternative.rating.procedure,
                        rating,
                        assessment_id=assessment_id,
                        urgent=alternative.urgent,
                        cancel=cancel,
                    ),
                },
            )
        )
    if (
        not judgement.applicable
        or decision.urgent
        or decision.urgent_unchecked  # never advise doing nothing while it may be urgent
        or not judgement.conservative_care_first
        or judgement.appropriateness is not Appropriateness.USUALLY_NOT_APPROPRIATE
    ):
        return suggestions
    # No referral for a low back pain diagnosis the record does not confirm, nor a second course.
    if not decision.findings.therapy.documented and not undetermined:
        referral = decision.rules.conservative_care.referral
        suggestions.append(
            (
                SuggestionKind.PHYSICAL_THERAPY,
                {
                    "label": "Refer to physical therapy instead of imaging",
                    "isRecommended": True,
                    "actions": [
                        cancel,
                        {
                            "type": "create",
                            "description": f"Create a draft {_lower_first(referral.text)}",
                            "resource": _physical_therapy_referral(decision, order),
                        },
                    ],
                },
            )
        )
    suggestions.append(
        (
            SuggestionKind.CANCEL,
            {"label": "Cancel this imaging order", "isRecommended": not suggestions, "actions": [cancel]},
        )
    )
    return suggestions


# The card's Markdown detail. ---------------------------------------------------------------------------


def _md(text: str) -> str:
    """Record text in Markdown: escaped, one line, so it can neither format nor inject links."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIAL)


def _evidence_line(evidence: Evidence) -> str:
    parts = [_md(evidence.reference)]
    if evidence.code:
        system = _SYSTEM_NAMES.get(evidence.system or "", evidence.system or "")
        code = f"{system} {evidence.code}".strip()
        parts.append(_md(code) + (f" “{_md(evidence.display)}”" if evidence.display else ""))
    elif evidence.display:
        parts.append(f"“{_md(evidence.display)}”")
    if evidence.date:
        parts.append(_md(evidence.date))
    if evidence.detail:
        parts.append(_md(evidence.detail))
    return ", ".join(parts)


def _flag_lines(decision: Decision, flags: Iterable[RedFlag]) -> list[str]:
    lines = []
    for flag in flags:
        lines.append(f"- **{decision.rules.flag_title(flag.id).capitalize()}**")
        lines.extend(f"  - {_evidence_line(evidence)}" for evidence in flag.evidence)
    return lines


def _cite(citation: Citation) -> str:
    return f"[{_md(citation.label)}]({citation.link})"


_INPUT_WORDS = {
    "patient": "the patient's demographics",
    "conditions": "conditions",
    "observations": "observations (temperature, weight)",
    "medications": "medication records",
    "procedures": "procedures",
    "serviceRequests": "referrals and orders",
}


def _unchecked_lines(decision: Decision, judgement: OrderJudgement) -> list[str]:
    rules = decision.rules
    lines = []
    explained = {affected for gap in decision.data_gaps for affected in gap.affects}
    for flag in decision.unchecked_flags:
        if flag.id in explained:
            continue  # the data gap below says it in the mappings' words
        inputs = ", ".join(_INPUT_WORDS.get(kind.value, kind.value) for kind in flag.unchecked)
        why = f": {inputs} not supplied" if inputs else ""
        lines.append(f"- {rules.flag_title(flag.id).capitalize()} could not be checked{why}.")
    lines.extend(f"- {_md(gap.description)}" for gap in decision.data_gaps)
    if judgement.applicable:
        for possible in decision.possible_variants:
            unknown = ", ".join(rules.term_title(term) for term in possible.unchecked)
            variant = f"{possible.id} ({possible.variant.title})"
            lines.append(f"- {variant} could apply, depending on what could not be checked: {unknown}.")
        if judgement.if_unchecked_present is not None:
            would_be = _phrase(judgement.if_unchecked_present)
            lines.append(f"- If these were present, this order would be rated **{would_be}**.")
    return lines


def _variant_lines(decision: Decision, cite: Callable[[str], str]) -> list[str]:
    lines = []
    for match in decision.variants:
        line = f"- {match.id}: {match.variant.title}"
        if match.variant.conservative_care_first and decision.unchecked_flags:
            line += " (among the red flags that could be checked)"
        if match.triggered_by:
            line += (
                f"; triggered by {', '.join(decision.rules.term_title(term) for term in match.triggered_by)}"
            )
        lines.append(f"{line} ({cite(match.variant.citation)})")
    return lines


def _unchecked_urgent_lines(decision: Decision) -> list[str]:
    """Urgent red flags that could not be checked: said at the top, since missing them is dangerous."""
    rules = decision.rules
    lines = []
    for flag_id in decision.urgent_unchecked:
        flag = decision.findings.red_flags.get(flag_id)
        inputs = (
            ", ".join(_INPUT_WORDS.get(kind.value, kind.value) for kind in flag.unchecked) if flag else ""
        )
        why = f" ({inputs} missing, partly supplied or unreadable)" if inputs else ""
        lines.append(
            f"**{rules.flag_title(flag_id).capitalize()} could not be checked**{why}. "
            f"If present, this is urgent: {_lower_first(rules.urgent.advice.text)}"
        )
    return lines


def _flag_blocks(decision: Decision, judgement: OrderJudgement, cite: Callable[[str], str]) -> list[str]:
    """Red flags found, then weak risk factors under their own heading (never called red flags).

    A flag another one implies (age over 50 beside age over 70) is left out: the same fact, said once.
    """
    rules = decision.rules
    shown = set(rules.without_implied(decision.red_flag_ids()))
    weak = [flag for flag in decision.weak_factors if flag.id in shown]
    weak_ids = {flag.id for flag in weak}
    red = [flag for flag in decision.red_flags if flag.id in shown and flag.id not in weak_ids]
    blocks = []
    if red:
        blocks.append("**Red flags found**\n" + "\n".join(_flag_lines(decision, red)))
    elif weak:
        blocks.append("**Red flags requiring imaging:** none in the data supplied.")
    elif judgement.applicable:
        blocks.append("**Red flags found:** none in the data supplied.")
    if weak:
        block = "**Risk factor, not enough alone to call for imaging**\n" + "\n".join(
            _flag_lines(decision, weak)
        )
        if judgement.applicable and decision.conservative_care_first:  # else a red flag calls for it
            advice = rules.weak_factors.advice
            block += f"\n\n{advice.text} ({cite(advice.citation)})"
        blocks.append(block)
    return blocks


_WITHHELD_WHY = {
    RatingWithheld.UNCHECKED_DATA: "what could not be checked would change it",
    RatingWithheld.LOW_BACK_PAIN_UNCONFIRMED: "it is not known whether low back pain criteria apply",
}


def _withheld_why(judgement: OrderJudgement, withheld: RatingWithheld) -> str:
    why = _WITHHELD_WHY[withheld]
    would_be = judgement.if_unchecked_present
    if withheld is RatingWithheld.UNCHECKED_DATA and would_be is not None:
        why += f" (it would be {would_be.pama_rating.value} if those findings were present)"
    return why


def withheld_rating_reason(judgement: OrderJudgement) -> str | None:
    """Why no PAMA rating was written into the order, in a clinician's words; None when it was."""
    withheld = judgement.rating_withheld
    if withheld is None:
        return None
    return f"No PAMA rating was recorded on the order: {_withheld_why(judgement, withheld)}."


def _pama_phrase(judgement: OrderJudgement) -> str:
    withheld = judgement.rating_withheld
    if withheld is None:
        return f"PAMA rating: {judgement.pama_rating.value}"
    return (
        f"provisional; no PAMA rating was recorded on the order, since {_withheld_why(judgement, withheld)}"
    )


def _option_block(heading: str, option: Alternative, tail: str, cite: Callable[[str], str]) -> str:
    cells = ", ".join(f"{cell.variant} {cite(cell.citation)}" for cell in option.rating.cells)
    if option.rating.first_line:
        cells += f", {cite(option.rating.first_line)}"
    return f"**{heading}:** {option.reason} ({cells}){tail}"


def card_detail(decision: Decision, judgement: OrderJudgement) -> str:
    """Markdown: verdict, urgency, better choice, variants, red flags with evidence, gaps, sources."""
    rules = decision.rules
    title = _procedure_title(judgement)
    cited: dict[str, Citation] = {}

    def cite(citation_id: str) -> str:
        citation = rules.citations[citation_id]
        cited[citation_id] = citation
        return _cite(citation)

    blocks: list[str] = []
    if decision.urgent:
        flags = " and ".join(rules.flag_title(flag) for flag in decision.urgent_flags)
        blocks.append(
            f"**{rules.urgent.advice.text}** Reason: {flags} ({cite(rules.urgent.advice.citation)})."
        )
    unchecked_urgent = _unchecked_urgent_lines(decision)
    if unchecked_urgent:
        cite(rules.urgent.advice.citation)
        blocks.extend(unchecked_urgent)
    if judgement.applicability is Applicability.UNDETERMINED:
        blocks.append(
            "**The low back pain diagnosis could not be confirmed from the record** (Conditions were "
            "missing, partly supplied or unreadable; see below). This order is judged as if it were for "
            "low back pain, the safer reading; if it is not, no ACR low back pain criteria apply."
        )
    if not judgement.applicable:
        why = (
            "the rules do not rate this procedure"
            if judgement.procedure is None
            else "the patient has no active low back pain condition and the order's reason names neither low "
            "back pain nor a red flag"
        )
        blocks.append(f"No ACR low back pain criteria apply to this {_lower_first(title)}: {why}.")
        if judgement.alternative is not None:  # the urgent study: urgency does not depend on the criteria
            blocks.append(_option_block("Urgent study", judgement.alternative, "", cite))
    else:
        procedure = judgement.procedure
        assert procedure is not None  # applicable orders have a known procedure
        decided_by = "; ".join(
            f"variant {cell.variant}, {cell.provenance.value} ({cite(cell.citation)})"
            for cell in judgement.cells
        )
        first_line = (
            f"\n- First-line test here ({cite(judgement.first_line)})" if judgement.first_line else ""
        )
        blocks.append(
            f"**{title}** is rated **{_phrase(judgement.appropriateness)}** ({_pama_phrase(judgement)}).\n\n"
            f"- Radiation: {procedure.radiation.describe()} ({cite(procedure.radiation_citation)})\n"
            f"- Decided by: {decided_by}{first_line}"
        )
        better_heading = (
            "Urgent study" if judgement.alternative and judgement.alternative.urgent else "Better choice"
        )
        for heading, option, tail in (
            (better_heading, judgement.alternative, ""),
            ("Equally appropriate option", judgement.equal_option, " The order need not change."),
        ):
            if option is not None:
                blocks.append(_option_block(heading, option, tail, cite))
        blocks.append("**Variants applied**\n" + "\n".join(_variant_lines(decision, cite)))
    blocks.extend(_flag_blocks(decision, judgement, cite))
    if judgement.applicable and decision.conservative_care_first:
        care = rules.conservative_care.advice
        therapy = decision.findings.therapy
        documented = (
            " Conservative therapy is documented in this episode: "
            + "; ".join(_evidence_line(evidence) for evidence in therapy.evidence)
            + "."
            if therapy.documented and therapy.evidence
            else ""
        )
        blocks.append(f"**Conservative care first:** {care.text} ({cite(care.citation)}){documented}")
    unchecked = _unchecked_lines(decision, judgement)
    if unchecked:
        blocks.append("**Could not be checked**\n" + "\n".join(unchecked))
    cite(rules.guideline.citation.id)
    blocks.append(
        "**Sources**\n"
        + "\n".join(f"- {_cite(citation)}: {_md(citation.reference())}" for citation in cited.values())
    )
    return "\n\n".join(blocks)


# The card and the response. ------------------------------------------------------------------------------


def _override_reasons(urgent: bool) -> list[dict[str, str]]:
    return [
        {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
        for code, display in (URGENT_OVERRIDE_REASONS if urgent else OVERRIDE_REASONS)
    ]


def _links(decision: Decision) -> list[dict[str, str]]:
    return [
        {"label": citation.title, "url": citation.link, "type": "absolute"}
        for citation in decision.rules.guideline.links
    ]


def _card(
    decision: Decision,
    judgement: OrderJudgement,
    *,
    assessment_id: str,
    new_id: Callable[[], str],
) -> tuple[dict[str, Any], CardIds]:
    card_uuid = new_id()
    indicator = card_indicator(decision, judgement)
    guideline = decision.rules.guideline
    card: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": card_summary(decision, judgement),
        "indicator": indicator,
        "detail": card_detail(decision, judgement),
        "source": {"label": guideline.label, "url": guideline.citation.link},
    }
    suggestion_ids = []
    suggestions = []
    for kind, suggestion in _suggestions(decision, judgement, assessment_id=assessment_id):
        suggestion_uuid = new_id()
        suggestions.append({"label": suggestion["label"], "uuid": suggestion_uuid, **suggestion})
        suggestion_ids.append(SuggestionId(uuid=suggestion_uuid, kind=kind, label=suggestion["label"]))
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    if indicator != "info":
        card["overrideReasons"] = _override_reasons(urgent=indicator == "critical")
    card["links"] = _links(decision)
    card["extension"] = {EXTENSION_KEY: order_verdict(decision, judgement, assessment_id=assessment_id)}
    return card, CardIds(card=card_uuid, suggestions=tuple(suggestion_ids))


def _quiet(decision: Decision, judgement: OrderJudgement) -> bool:
    """Cards a quiet site does not want: info cards for appropriate or no-criteria orders.

    Never an urgent card (critical), one naming an urgent red flag that could not be checked, nor one
    whose rating was withheld: with no system action, the card is all the clinician gets.
    """
    return (
        card_indicator(decision, judgement) == "info"
        and not decision.urgent_unchecked
        and judgement.rating_withheld is None
    )


def build_hook_response(
    decision: Decision,
    *,
    assessment_id: str,
    new_id: Callable[[], str],
    quiet_when_appropriate: bool,
) -> HookResponse:
    """The CDS Hooks answer: one card per judged order, and an `update` system action rating each order.

    With `quiet_when_appropriate`, info cards for appropriate (and no-criteria-apply) orders are left out;
    their system actions stay, so the rating still reaches the order. Urgent cards are never left out.
    """
    cards = []
    card_ids: dict[str, CardIds] = {}
    for judgement in decision.orders:
        if quiet_when_appropriate and _quiet(decision, judgement):
            continue
        card, ids = _card(decision, judgement, assessment_id=assessment_id, new_id=new_id)
        cards.append(card)
        card_ids[judgement.order.reference] = ids
    body: dict[str, Any] = {"cards": cards}
    actions = system_actions(decision, assessment_id=assessment_id)
    if actions:
        body["systemActions"] = actions
        body["extension"] = {"systemActions": list(actions)}
    return HookResponse(body=body, card_ids=card_ids)
