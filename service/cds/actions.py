"""What a card offers to do: the rating system action and the suggestions' FHIR resources.

Rules kept here (CDS Hooks 2.0 and the CDS Hooks Sandbox's quirks): every action has a `description`;
`delete` names `ServiceRequest/<id>`; `create`/`update` carry a whole resource; an `update` keeps the
order's codings and carries the Argonaut PAMA rating (a replacement with no rating to give is a `delete`
of the draft and a `create` of a new one).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fhir_mappings.model import ImagingOrder
from service.rules import Applicability, Appropriateness, Decision, OrderJudgement, PamaRating, Procedure
from service.rules.model import ProcedureCode
from service.wording.phrases import lower_first, procedure_title

PAMA_RATING_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
# Every Argonaut PAMA extension starts so; a re-rated order drops the previous consult's extensions.
_PAMA_EXTENSION_PREFIX = "http://fhir.org/argonaut/Extension/pama-rating"
# ServiceRequest.priority codes at least as pressing as "urgent": an urgent replacement keeps them.
_URGENT_PRIORITIES = frozenset({"urgent", "asap", "stat"})


class SuggestionKind(StrEnum):
    REPLACE = "replace"
    CANCEL = "cancel"
    PHYSICAL_THERAPY = "physical-therapy"


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


def can_act_on(order: ImagingOrder) -> bool:
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
        if can_act_on(judgement.order) and judgement.rating_withheld is None
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
    title = lower_first(procedure.title)
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


def card_suggestions(
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
    if not offered or not can_act_on(order):
        return []
    suggestions: list[tuple[SuggestionKind, dict[str, Any]]] = []
    undetermined = judgement.applicability is Applicability.UNDETERMINED
    cancel = {
        "type": "delete",
        "description": f"Cancel the draft order for {lower_first(procedure_title(judgement))}",
        "resourceId": order.reference,
    }
    if alternative is not None:
        better = lower_first(alternative.rating.procedure.title)
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
                    "label": f"Urgent: {lower_first(label)}" if alternative.urgent else label,
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
                            "description": f"Create a draft {lower_first(referral.text)}",
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
