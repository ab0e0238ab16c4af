"""From a decision to the CDS Hooks answer: one card per judged order, with its suggestions, and the
rating system actions. The words live in service/wording (summary, detail), the actions' resources in
service/cds/actions.py; this module puts them together.

Card rules kept here (CDS Hooks 2.0 and the CDS Hooks Sandbox's quirks): summary under 140 characters;
`uuid` on every card and suggestion; `selectionBehavior: at-most-one` whenever there are suggestions;
optional fields are left out, never empty. System actions go both top level (2.0) and in
`extension.systemActions`, the only place the Sandbox reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.cds.actions import SuggestionKind, card_suggestions, system_actions
from service.rules import Appropriateness, Decision, OrderJudgement
from service.wording.detail import card_detail
from service.wording.summary import card_summary

EXTENSION_KEY = "lbp-imaging-cds"


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


# The card and the response. ------------------------------------------------------------------------------


def _override_reasons(decision: Decision, *, urgent: bool) -> list[dict[str, str]]:
    reasons = decision.rules.override_reasons
    return [
        {"system": reasons.system, "code": reason.code, "display": reason.display}
        for reason in (reasons.urgent if urgent else reasons.standard)
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
    for kind, suggestion in card_suggestions(decision, judgement, assessment_id=assessment_id):
        suggestion_uuid = new_id()
        suggestions.append({"label": suggestion["label"], "uuid": suggestion_uuid, **suggestion})
        suggestion_ids.append(SuggestionId(uuid=suggestion_uuid, kind=kind, label=suggestion["label"]))
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    if indicator != "info":
        card["overrideReasons"] = _override_reasons(decision, urgent=indicator == "critical")
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
    extra_links: Sequence[Mapping[str, str]] = (),
) -> HookResponse:
    """The CDS Hooks answer: one card per judged order, and an `update` system action rating each order.
    `extra_links` go on every card after the guideline's (the red-flag questions link).

    With `quiet_when_appropriate`, info cards for appropriate (and no-criteria-apply) orders are left out;
    their system actions stay, so the rating still reaches the order. Urgent cards are never left out.
    """
    cards = []
    card_ids: dict[str, CardIds] = {}
    for judgement in decision.orders:
        if quiet_when_appropriate and _quiet(decision, judgement):
            continue
        card, ids = _card(decision, judgement, assessment_id=assessment_id, new_id=new_id)
        card["links"].extend(dict(link) for link in extra_links)
        cards.append(card)
        card_ids[judgement.order.reference] = ids
    body: dict[str, Any] = {"cards": cards}
    actions = system_actions(decision, assessment_id=assessment_id)
    if actions:
        body["systemActions"] = actions
        body["extension"] = {"systemActions": list(actions)}
    return HookResponse(body=body, card_ids=card_ids)
