"""Cards, suggestions and system actions built from decisions: the CDS Hooks card rules on every card."""

from __future__ import annotations

import copy
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.model import PROCEDURE_IDS, RED_FLAG_IDS, DataGap, Evidence, Findings, GapKind, InputKind
from service.cds.actions import (
    PAMA_CONSULT_ID_EXTENSION,
    PAMA_RATING_EXTENSION,
    PAMA_RATING_SYSTEM,
    SuggestionKind,
)
from service.cds.cards import EXTENSION_KEY, HookResponse, build_hook_response
from service.evaluate_answer import evaluate_answer
from service.rules import Appropriateness, Decision, Rules, assess, load_rules
from tests.support.cds_rules import card_rule_violations
from tests.support.contract import component_validator, schema_errors

from .builders import CPT, LOW_BACK_PAIN_REASON, findings, imaging_order, service_request

ASSESSMENT_ID = "5a7e0f7e-0000-4000-8000-00000000a55e"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def id_factory() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: str(uuid.UUID(int=next(counter)))


def respond(decision: Decision, *, quiet: bool = False) -> HookResponse:
    return build_hook_response(
        decision, assessment_id=ASSESSMENT_ID, new_id=id_factory(), quiet_when_appropriate=quiet
    )


OBSERVATIONS_GAP = DataGap(
    "observations-not-supplied", GapKind.NOT_SUPPLIED, ("fever",), InputKind.OBSERVATIONS
)
UNREADABLE_LBP = DataGap(
    "records-unreadable", GapKind.RECORDS_SKIPPED, ("episode",), problem="unreadable", count=1
)
CASES: dict[str, Callable[[], Findings]] = {
    "v1 mri": lambda: findings(orders=[imaging_order("mri-lumbar-without-contrast")]),
    "v1 ct, fever unchecked": lambda: findings(
        unknown=["fever"],
        gaps=[OBSERVATIONS_GAP],
        orders=[imaging_order("ct-lumbar-without-and-with-contrast")],
    ),
    "v2 x-ray": lambda: findings(symptom_days=50, orders=[imaging_order("xr-lumbar")]),
    "v3 ct": lambda: findings(
        symptom_days=50, therapy=True, orders=[imaging_order("ct-lumbar-without-contrast")]
    ),
    "v4 ct": lambda: findings(
        present=["cauda-equina"], orders=[imaging_order("ct-lumbar-without-and-with-contrast")]
    ),
    "neuro mri": lambda: findings(
        present=["severe-neurologic-deficit"], orders=[imaging_order("mri-lumbar-without-contrast")]
    ),
    "v5 mri": lambda: findings(
        present=["prior-lumbar-surgery"], orders=[imaging_order("mri-lumbar-without-and-with-contrast")]
    ),
    "v6 x-ray": lambda: findings(present=["osteoporosis"], orders=[imaging_order("xr-lumbar")]),
    "v7 ct": lambda: findings(present=["cancer-history"], orders=[imaging_order("ct-lumbar-with-contrast")]),
    "weak factor": lambda: findings(present=["age-over-50"], orders=[imaging_order("xr-lumbar")]),
    "no criteria": lambda: findings(
        episode_active=False, orders=[imaging_order("mri-lumbar-without-contrast", reason_lbp=False)]
    ),
    "two orders": lambda: findings(
        present=["spinal-infection"],
        orders=[imaging_order("xr-lumbar", "xr"), imaging_order("ct-myelography-lumbar", "myelo")],
    ),
    "order without id": lambda: findings(orders=[imaging_order("ct-lumbar-with-contrast", None)]),
    "lbp undetermined": lambda: findings(
        episode_active=False,
        gaps=[UNREADABLE_LBP],
        present=["osteoporosis"],
        orders=[imaging_order("ct-lumbar-with-contrast", reason_lbp=False)],
    ),
    "lbp undetermined, cauda equina": lambda: findings(
        episode_active=False,
        gaps=[UNREADABLE_LBP],
        present=["cauda-equina"],
        orders=[imaging_order("ct-lumbar-with-contrast", reason_lbp=False)],
    ),
}


@pytest.fixture(params=CASES, ids=list(CASES))
def case(request: pytest.FixtureRequest, rules: Rules) -> Decision:
    return assess(CASES[request.param](), rules)


def actions_of(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for card in body["cards"]:
        for suggestion in card.get("suggestions", []):
            yield from suggestion["actions"]


def test_every_card_keeps_the_cds_hooks_card_rules(case: Decision) -> None:
    body = respond(case).body
    assert card_rule_violations(body) == []
    assert schema_errors(component_validator("CdsServiceResponse"), body) == []


def test_every_update_suggestion_carries_what_the_sandbox_needs(case: Decision) -> None:
    """The Sandbox throws when an update lacks code.coding[0], reasonCode[].coding[0] or the rating."""
    for action in actions_of(respond(case).body):
        if action["type"] != "update":
            continue
        resource = action["resource"]
        assert resource["code"]["coding"][0]["code"]
        assert all(reason["coding"][0] for reason in resource["reasonCode"])
        assert PAMA_RATING_EXTENSION in {extension["url"] for extension in resource["extension"]}


def test_every_card_and_suggestion_uuid_comes_from_the_id_factory_and_is_linked(case: Decision) -> None:
    issued: list[str] = []
    factory = id_factory()

    def new_id() -> str:
        issued.append(factory())
        return issued[-1]

    response = build_hook_response(
        case, assessment_id=ASSESSMENT_ID, new_id=new_id, quiet_when_appropriate=False
    )
    cards = response.body["cards"]
    named = [card["uuid"] for card in cards] + [
        s["uuid"] for card in cards for s in card.get("suggestions", [])
    ]
    assert sorted(named) == sorted(issued)
    assert len(cards) == len(case.orders)
    for card in cards:
        ids = response.card_ids[card["extension"][EXTENSION_KEY]["order"]]
        assert ids.card == card["uuid"]
        assert [s.uuid for s in ids.suggestions] == [s["uuid"] for s in card.get("suggestions", [])]


def test_card_extension_and_evaluate_give_the_same_values(case: Decision) -> None:
    cards = respond(case).body["cards"]
    answer = evaluate_answer(case, assessment_id=ASSESSMENT_ID)
    assert len(cards) == len(answer["orders"])
    for card, order in zip(cards, answer["orders"], strict=True):
        extension = card["extension"][EXTENSION_KEY]
        assert extension["assessmentId"] == answer["assessmentId"]
        assert {key: order[key] for key in extension if key != "assessmentId"} == {
            key: value for key, value in extension.items() if key != "assessmentId"
        }
        assert extension["rulesVersion"] == answer["rulesVersion"]
        assert extension.get("redFlags", []) == [flag["id"] for flag in answer["redFlags"]]
        assert card["summary"] == order["summary"]
        assert card["indicator"] == order["indicator"]


def test_building_the_answer_leaves_the_orders_as_sent(case: Decision) -> None:
    before = [copy.deepcopy(dict(judgement.order.resource)) for judgement in case.orders]
    respond(case)
    evaluate_answer(case, assessment_id=ASSESSMENT_ID)
    assert [dict(judgement.order.resource) for judgement in case.orders] == before


def _all_decisions(rules: Rules) -> Iterator[Decision]:
    """Every procedure under no flag, each flag, each pair of flags, with and without unchecked flags."""
    flag_sets = [(), *((flag,) for flag in RED_FLAG_IDS), *itertools.combinations(RED_FLAG_IDS, 2)]
    orders = [imaging_order(procedure, procedure) for procedure in PROCEDURE_IDS]
    for present in flag_sets:
        for unknown in ((), ("fever", "cancer-history"), ("cauda-equina",)):
            yield assess(findings(present=present, unknown=set(unknown) - set(present), orders=orders), rules)


def test_every_summary_is_under_140_characters_and_names_the_procedure(rules: Rules) -> None:
    for decision in _all_decisions(rules):
        for card, judgement in zip(respond(decision).body["cards"], decision.orders, strict=True):
            assert len(card["summary"]) < 140, card["summary"]
            assert judgement.procedure is not None
            assert judgement.procedure.title.lower() in card["summary"].lower()
            if decision.urgent_unchecked and not decision.urgent:
                assert "could not be checked" in card["summary"], card["summary"]
                assert "conservative care" not in card["summary"], card["summary"]


@pytest.mark.parametrize(
    ("name", "indicator"),
    [
        ("v4 ct", "critical"),
        ("neuro mri", "critical"),
        ("v1 mri", "warning"),
        ("v7 ct", "info"),  # may be appropriate
        ("v6 x-ray", "info"),  # usually appropriate
        ("no criteria", "info"),
    ],
)
def test_indicator_is_critical_when_urgent_warning_when_usually_not_appropriate(
    rules: Rules, name: str, indicator: str
) -> None:
    (card,) = respond(assess(CASES[name](), rules)).body["cards"]
    assert card["indicator"] == indicator
    assert ("overrideReasons" in card) is (indicator != "info")


def test_urgent_card_says_urgent_and_emergency_referral(rules: Rules) -> None:
    (card,) = respond(assess(CASES["v4 ct"](), rules)).body["cards"]
    assert card["summary"].startswith("Urgent: suspected cauda equina syndrome.")
    assert "emergency referral" in card["summary"]
    assert "**Urgent evaluation is needed; consider emergency referral.**" in card["detail"]


def test_override_reasons_are_codings_with_display_in_the_project_code_system(rules: Rules) -> None:
    (card,) = respond(assess(CASES["v1 mri"](), rules)).body["cards"]
    reasons = card["overrideReasons"]
    assert {reason["system"] for reason in reasons} == {
        "https://lbp-imaging-cds.org/CodeSystem/override-reason"
    }
    assert {
        "red-flag-not-recorded",
        "patient-preference",
        "conservative-care-tried",
        "surgical-planning",
    } <= {reason["code"] for reason in reasons}
    assert all(reason["display"] for reason in reasons)


# Suggestions. ------------------------------------------------------------------------------------------


def test_no_red_flags_suggests_physical_therapy_instead_and_cancelling(rules: Rules) -> None:
    response = respond(assess(CASES["v1 mri"](), rules))
    (card,) = response.body["cards"]
    kinds = [suggestion.kind for suggestion in response.card_ids["ServiceRequest/o1"].suggestions]
    assert kinds == [SuggestionKind.PHYSICAL_THERAPY, SuggestionKind.CANCEL]
    assert card["selectionBehavior"] == "at-most-one"
    therapy, cancel = card["suggestions"]
    assert therapy["isRecommended"] is True
    assert cancel["isRecommended"] is False
    delete, create = therapy["actions"]
    assert delete == {
        "type": "delete",
        "description": "Cancel the draft order for lumbar MRI without contrast",
        "resourceId": "ServiceRequest/o1",
    }
    referral = create["resource"]
    assert create["type"] == "create"
    assert referral["resourceType"] == "ServiceRequest"
    assert referral["status"] == "draft"
    assert referral["code"]["coding"][0] == {
        "system": CPT,
        "code": "97161",
        "display": "Physical therapy evaluation: low complexity",
    }
    assert referral["reasonCode"] == [LOW_BACK_PAIN_REASON]
    assert referral["subject"] == {"reference": "Patient/p1"}
    assert "id" not in referral
    assert cancel["actions"] == [delete]


def test_no_physical_therapy_suggestion_when_therapy_is_already_documented(rules: Rules) -> None:
    decision = assess(findings(symptom_days=20, therapy=True, orders=[imaging_order("xr-lumbar")]), rules)
    (card,) = respond(decision).body["cards"]
    assert [suggestion["label"] for suggestion in card["suggestions"]] == ["Cancel this imaging order"]
    assert card["suggestions"][0]["isRecommended"] is True
    assert "Procedure/pt1" in card["detail"]


def test_a_better_procedure_is_the_one_suggestion_as_an_update_of_the_order(rules: Rules) -> None:
    """Suspected cancer, CT with contrast: MRI without and with contrast instead (it keeps the contrast);
    red flags, so no bare cancel."""
    (card,) = respond(assess(CASES["v7 ct"](), rules)).body["cards"]
    (replace_order,) = card["suggestions"]
    assert replace_order["label"] == "Order lumbar MRI without and with contrast instead"
    assert replace_order["isRecommended"] is True
    (update,) = replace_order["actions"]
    sent = service_request("o1", "ct-lumbar-with-contrast")
    resource = update["resource"]
    assert resource["code"] == {
        "coding": [
            {
                "system": CPT,
                "code": "72158",
                "display": "MRI lumbar spine without contrast, followed by contrast",
            }
        ],
        "text": "Lumbar MRI without and with contrast",
    }
    assert {key: value for key, value in resource.items() if key not in ("code", "extension")} == {
        key: value for key, value in sent.items() if key != "code"
    }
    assert resource["extension"] == [
        {
            "url": PAMA_RATING_EXTENSION,
            "valueCodeableConcept": {"coding": [{"system": PAMA_RATING_SYSTEM, "code": "appropriate"}]},
        },
        {"url": PAMA_CONSULT_ID_EXTENSION, "valueUri": f"urn:uuid:{ASSESSMENT_ID}"},
    ]


def test_mri_with_contrast_for_suspected_cancer_keeps_the_contrast_and_says_why(rules: Rules) -> None:
    order = imaging_order("mri-lumbar-with-contrast")
    (card,) = respond(assess(findings(present=["cancer-history"], orders=[order]), rules)).body["cards"]
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Order lumbar MRI without and with contrast instead"
    coding = suggestion["actions"][0]["resource"]["code"]["coding"][0]
    assert (coding["code"], coding["display"]) == (
        "72158",
        "MRI lumbar spine without contrast, followed by contrast",
    )
    assert "consider lumbar MRI without and with contrast" in card["summary"]
    assert (
        "**Better choice:** Lumbar MRI without and with contrast is rated usually appropriate, whereas "
        "lumbar MRI with contrast is rated usually not appropriate; it keeps the IV contrast you ordered."
    ) in card["detail"]


# Urgent cards: never cancel; the urgent study is the one suggestion; reasons to override an urgency. -----

URGENT_OVERRIDE_CODES = {
    "mri-contraindicated-or-unavailable",
    "sent-to-emergency-department",
    "spine-surgeon-request",
}


@pytest.mark.parametrize(
    ("present", "procedure"),
    [
        (["cauda-equina"], "ct-lumbar-without-and-with-contrast"),
        (["cauda-equina"], "xr-lumbar"),
        (["cauda-equina"], "mri-lumbar-with-contrast"),
        (["severe-neurologic-deficit", "cancer-history"], "ct-lumbar-with-contrast"),
        (["cauda-equina", "osteoporosis"], "ct-lumbar-without-contrast"),  # usually appropriate via V6
    ],
)
def test_an_urgent_card_offers_only_the_urgent_study_labelled_urgent(
    rules: Rules, present: list[str], procedure: str
) -> None:
    decision = assess(findings(present=present, orders=[imaging_order(procedure)]), rules)
    response = respond(decision)
    (card,) = response.body["cards"]
    assert card_rule_violations(response.body) == []
    assert card["indicator"] == "critical"
    (suggestion,) = card["suggestions"]
    assert [s.kind for s in response.card_ids["ServiceRequest/o1"].suggestions] == [SuggestionKind.REPLACE]
    assert suggestion["label"] == "Urgent: order lumbar MRI without contrast instead"
    assert suggestion["isRecommended"] is True
    (update,) = suggestion["actions"]
    assert update["type"] == "update"
    assert "urgent" in update["description"]
    resource = update["resource"]
    assert resource["code"]["coding"][0]["code"] == "72148"
    assert resource["priority"] == "urgent"
    assert resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    assert card["summary"].startswith("Urgent: ")
    ordered = rules.procedures[procedure].title
    assert f"Lumbar MRI without contrast, not {ordered[0].lower()}{ordered[1:]}" in card["summary"]
    assert card["summary"].endswith("; consider emergency referral")
    assert "**Urgent study:** Lumbar MRI without contrast is the study to get urgently for" in card["detail"]


def test_an_urgent_summary_too_long_for_the_reasons_still_names_the_urgent_study(rules: Rules) -> None:
    order = imaging_order("ct-lumbar-without-and-with-contrast")
    decision = assess(findings(present=["cauda-equina", "severe-neurologic-deficit"], orders=[order]), rules)
    (card,) = respond(decision).body["cards"]
    assert card["summary"] == (
        "Urgent evaluation needed. Lumbar MRI without contrast, not lumbar CT without and with contrast"
    )


def test_the_urgent_replacement_never_lowers_a_stat_priority(rules: Rules) -> None:
    sent = service_request("o1", "xr-lumbar", priority="stat")
    order = imaging_order("xr-lumbar", resource=sent)
    (card,) = respond(assess(findings(present=["cauda-equina"], orders=[order]), rules)).body["cards"]
    assert card["suggestions"][0]["actions"][0]["resource"]["priority"] == "stat"


@pytest.mark.parametrize(
    "decision_of",
    [
        lambda: findings(present=["cauda-equina"], orders=[imaging_order("mri-lumbar-without-contrast")]),
        lambda: findings(
            present=["cauda-equina"], orders=[imaging_order("mri-lumbar-without-and-with-contrast")]
        ),
        lambda: findings(  # not for back pain: no criteria, still urgent; it is the urgent study
            episode_active=False,
            present=["cauda-equina"],
            orders=[imaging_order("mri-lumbar-without-contrast", reason_lbp=False)],
        ),
    ],
    ids=["mri", "mri with and without contrast", "no criteria"],
)
def test_an_urgent_card_never_offers_cancelling(rules: Rules, decision_of: Callable[[], Findings]) -> None:
    (card,) = respond(assess(decision_of(), rules)).body["cards"]
    assert card["indicator"] == "critical"
    assert "suggestions" not in card
    assert "selectionBehavior" not in card


def test_an_urgent_order_without_criteria_is_offered_the_urgent_study_not_a_cancel(rules: Rules) -> None:
    """Not for back pain, so no criteria apply to the CT, but cauda equina is urgent whatever the order."""
    order = imaging_order("ct-lumbar-with-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, present=["cauda-equina"], orders=[order]), rules)
    response = respond(decision)
    assert card_rule_violations(response.body) == []
    (card,) = response.body["cards"]
    assert card["indicator"] == "critical"
    assert card["extension"][EXTENSION_KEY]["appropriateness"] == "no-criteria-apply"
    assert [s.kind for s in response.card_ids["ServiceRequest/o1"].suggestions] == [SuggestionKind.REPLACE]
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Urgent: order lumbar MRI without contrast instead"
    (update,) = suggestion["actions"]
    assert update["type"] == "update"
    resource = update["resource"]
    assert resource["code"]["coding"][0]["code"] == "72148"
    assert resource["priority"] == "urgent"
    rating = next(e for e in resource["extension"] if e["url"] == PAMA_RATING_EXTENSION)
    assert rating["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    assert card["summary"] == (
        "Urgent: suspected cauda equina syndrome. Lumbar MRI without contrast, not lumbar CT with contrast; "
        "consider emergency referral"
    )
    assert "**Urgent study:** Lumbar MRI without contrast is the study to get urgently for" in card["detail"]
    (system_action,) = response.body["systemActions"]  # the order itself is still rated as it stands
    assert system_action["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == (
        "no-criteria-apply"
    )


def test_urgent_override_reasons_are_about_the_urgency(rules: Rules) -> None:
    (card,) = respond(assess(CASES["v4 ct"](), rules)).body["cards"]
    reasons = card["overrideReasons"]
    assert {reason["system"] for reason in reasons} == {
        "https://lbp-imaging-cds.org/CodeSystem/override-reason"
    }
    codes = {reason["code"] for reason in reasons}
    assert codes >= URGENT_OVERRIDE_CODES
    assert not {"conservative-care-tried", "patient-preference", "red-flag-not-recorded"} & codes
    displays = {reason["display"] for reason in reasons}
    assert {
        "MRI contraindicated or not available in time",
        "Patient sent to the emergency department",
        "Study requested by a spine surgeon",
    } <= displays
    (warning,) = respond(assess(CASES["v1 mri"](), rules)).body["cards"]
    assert not URGENT_OVERRIDE_CODES & {reason["code"] for reason in warning["overrideReasons"]}


def test_red_flags_never_get_a_bare_cancel_only_no_red_flag_pain_does(rules: Rules) -> None:
    """Cancel (alone or with a referral) only when V1 or V2 alone applies; otherwise the better test.

    And the other half: an order usually not appropriate for pain without red flags, with nothing urgent
    or possibly urgent, is always offered the cancel.
    """
    offered = 0
    for decision in _all_decisions(rules):
        response = respond(decision)
        no_red_flags = set(decision.variant_ids()) <= {"V1", "V2"}
        for card, judgement in zip(response.body["cards"], decision.orders, strict=True):
            ids = response.card_ids[card["extension"][EXTENSION_KEY]["order"]]
            kinds = {suggestion.kind for suggestion in ids.suggestions}
            deletes = [
                action
                for suggestion in card.get("suggestions", [])
                for action in suggestion["actions"]
                if action["type"] == "delete"
            ]
            if not no_red_flags:
                assert SuggestionKind.CANCEL not in kinds, (decision.variant_ids(), card["summary"])
                assert not deletes, (decision.variant_ids(), card["summary"])
            if decision.urgent or decision.urgent_unchecked:
                assert kinds <= {SuggestionKind.REPLACE}, (decision.urgent_unchecked, card["summary"])
            elif (
                no_red_flags
                and judgement.applicable
                and judgement.appropriateness is Appropriateness.USUALLY_NOT_APPROPRIATE
                and judgement.order.resource_id
            ):
                assert SuggestionKind.CANCEL in kinds, (decision.variant_ids(), card["summary"])
                offered += 1
    assert offered  # the sweep reaches the positive half


def test_the_replacement_keeps_the_orders_code_system(rules: Rules) -> None:
    order = imaging_order("ct-myelography-lumbar")  # coded in LOINC
    decision = assess(findings(present=["cancer-history"], orders=[order]), rules)
    (card,) = respond(decision).body["cards"]
    coding = card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]
    assert (coding["system"], coding["code"]) == ("http://loinc.org", "30679-5")


def test_an_appropriate_order_is_not_switched_to_an_equal_one_only_told_of_it(rules: Rules) -> None:
    """X-ray for fracture risk: no "Order MRI instead" (same category, far costlier); MRI is mentioned."""
    (card,) = respond(assess(CASES["v6 x-ray"](), rules)).body["cards"]
    assert "suggestions" not in card
    assert "MRI" not in card["summary"]
    detail = card["detail"]
    assert (
        "**Equally appropriate option:** Lumbar MRI without contrast is also rated usually appropriate; "
        "it involves no ionising radiation."
    ) in detail
    assert "The order need not change." in detail
    assert (
        "- First-line test here ([ACP 2011](https://doi.org/10.7326/0003-4819-154-3-201102010-00008))"
        in detail
    )


@pytest.mark.parametrize("name", ["v5 mri", "neuro mri", "no criteria", "v6 x-ray"])
def test_the_best_choice_and_orders_without_criteria_get_no_suggestions(rules: Rules, name: str) -> None:
    (card,) = respond(assess(CASES[name](), rules)).body["cards"]
    assert "suggestions" not in card
    assert "selectionBehavior" not in card


def test_an_order_without_an_id_gets_a_card_but_nothing_to_act_on(rules: Rules) -> None:
    response = respond(assess(CASES["order without id"](), rules))
    (card,) = response.body["cards"]
    assert "suggestions" not in card
    assert "systemActions" not in response.body
    assert "extension" not in response.body


# System actions. ---------------------------------------------------------------------------------------


def _without_rating(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "extension"}


def test_system_actions_rate_each_order_changing_nothing_else(rules: Rules) -> None:
    decision = assess(CASES["two orders"](), rules)
    body = respond(decision).body
    assert body["extension"] == {"systemActions": body["systemActions"]}
    ratings = {}
    for action, judgement in zip(body["systemActions"], decision.orders, strict=True):
        assert action["type"] == "update"
        assert action["description"]
        assert _without_rating(action["resource"]) == dict(judgement.order.resource)
        rating, consult = action["resource"]["extension"]
        assert rating["url"] == PAMA_RATING_EXTENSION
        assert consult == {"url": PAMA_CONSULT_ID_EXTENSION, "valueUri": f"urn:uuid:{ASSESSMENT_ID}"}
        ratings[action["resource"]["id"]] = rating["valueCodeableConcept"]["coding"][0]["code"]
    assert ratings == {"xr": "appropriate", "myelo": "appropriate"}  # may be appropriate in V7


@pytest.mark.parametrize(
    ("name", "rating"), [("v1 mri", "not-appropriate"), ("no criteria", "no-criteria-apply")]
)
def test_system_action_ratings(rules: Rules, name: str, rating: str) -> None:
    (action,) = respond(assess(CASES[name](), rules)).body["systemActions"]
    assert action["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == rating


def test_a_rerated_order_keeps_its_other_extensions_and_drops_the_previous_rating(rules: Rules) -> None:
    other = {"url": "https://example.org/Extension/priority-note", "valueString": "site extension"}
    previous = [
        {"url": PAMA_RATING_EXTENSION, "valueCodeableConcept": {"coding": [{"code": "appropriate"}]}},
        {"url": "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted", "valueString": "G1011"},
        {"url": PAMA_CONSULT_ID_EXTENSION, "valueUri": "urn:uuid:old"},
    ]
    sent = service_request("o1", "mri-lumbar-without-contrast", extension=[other, *previous])
    order = imaging_order("mri-lumbar-without-contrast", resource=sent)
    (action,) = respond(assess(findings(orders=[order]), rules)).body["systemActions"]
    extensions = action["resource"]["extension"]
    assert extensions[0] == other
    assert [extension["url"] for extension in extensions[1:]] == [
        PAMA_RATING_EXTENSION,
        PAMA_CONSULT_ID_EXTENSION,
    ]
    assert extensions[1]["valueCodeableConcept"]["coding"][0]["code"] == "not-appropriate"
    assert sent["extension"] == [other, *previous]  # the input is untouched


# Quiet mode. -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kept"),
    [("v6 x-ray", False), ("no criteria", False), ("v7 ct", False), ("v1 mri", True), ("v4 ct", True)],
)
def test_quiet_mode_drops_info_cards_for_appropriate_orders_but_keeps_the_rating(
    rules: Rules, name: str, kept: bool
) -> None:
    decision = assess(CASES[name](), rules)
    loud, quiet = respond(decision).body, respond(decision, quiet=True).body
    assert len(quiet["cards"]) == (1 if kept else 0)
    assert quiet["systemActions"] == loud["systemActions"]
    assert card_rule_violations(quiet) == []


def test_quiet_mode_never_hides_an_urgent_card_even_without_criteria(rules: Rules) -> None:
    """Cauda equina documented, order not for back pain: still urgent, critical, and never quieted."""
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(findings(episode_active=False, present=["cauda-equina"], orders=[order]), rules)
    (judgement,) = decision.orders
    assert judgement.appropriateness.value == "no-criteria-apply"
    (card,) = respond(decision, quiet=True).body["cards"]
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Urgent: suspected cauda equina syndrome.")
    assert "emergency referral" in card["summary"]
    assert card["extension"][EXTENSION_KEY]["urgent"] is True
    assert "**Urgent evaluation is needed; consider emergency referral.**" in card["detail"]


@pytest.mark.parametrize(
    "decision_of",
    [
        lambda: findings(
            unknown=["cauda-equina"], present=["osteoporosis"], orders=[imaging_order("xr-lumbar")]
        ),
        lambda: findings(
            episode_active=False, gaps=[UNREADABLE_LBP], present=["osteoporosis"],
            orders=[imaging_order("xr-lumbar", reason_lbp=False)],
        ),
    ],
    ids=["urgent flag unchecked", "rating withheld"],
)  # fmt: skip
def test_quiet_mode_keeps_info_cards_that_carry_what_no_system_action_does(
    rules: Rules, decision_of: Callable[[], Findings]
) -> None:
    decision = assess(decision_of(), rules)
    (card,) = respond(decision, quiet=True).body["cards"]
    assert card["indicator"] == "info"


# Unknown applicability: judged as if criteria apply, rating withheld. -----------------------------------


def test_an_unreadable_back_pain_diagnosis_with_cauda_equina_gives_a_critical_unrated_card(
    rules: Rules,
) -> None:
    order = imaging_order("mri-lumbar-without-contrast", reason_lbp=False)
    decision = assess(
        findings(episode_active=False, gaps=[UNREADABLE_LBP], present=["cauda-equina"], orders=[order]), rules
    )
    body = respond(decision).body
    assert card_rule_violations(body) == []
    (card,) = body["cards"]
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Urgent: suspected cauda equina syndrome. Lumbar MRI without contrast:")
    verdict = card["extension"][EXTENSION_KEY]
    assert (verdict["appropriateness"], verdict["urgent"], verdict["variants"]) == (
        "usually-appropriate",
        True,
        ["V4"],
    )
    detail = card["detail"]
    assert "**The low back pain diagnosis could not be confirmed from the record**" in detail
    assert "no PAMA rating was recorded on the order, since it is not known whether low back pain" in detail
    assert "systemActions" not in body
    assert "extension" not in body
    (answer,) = evaluate_answer(decision, assessment_id=ASSESSMENT_ID)["orders"]
    assert "pamaRating" not in answer
    assert answer["pamaRatingWithheld"]["reason"] == "low-back-pain-unconfirmed"


def test_an_unconfirmed_diagnosis_gets_no_physical_therapy_referral_and_an_unrated_replacement(
    rules: Rules,
) -> None:
    orders = [imaging_order("ct-lumbar-with-contrast", reason_lbp=False)]
    decision = assess(
        findings(episode_active=False, gaps=[UNREADABLE_LBP], present=["osteoporosis"], orders=orders), rules
    )
    (card,) = respond(decision).body["cards"]
    assert card["summary"] == (
        "Lumbar CT with contrast: usually not appropriate if for low back pain; the diagnosis could not be "
        "confirmed from the record"
    )
    labels = [suggestion["label"] for suggestion in card["suggestions"]]
    assert labels == ["Order lumbar spine X-ray instead"]  # a red flag: the better test, never a cancel
    # No rating can be determined for the replacement either, and an update without one makes the Sandbox
    # throw: the draft is cancelled and a new, unrated draft created in its place.
    delete, create = card["suggestions"][0]["actions"]
    assert delete == {
        "type": "delete",
        "description": "Cancel the draft order for lumbar CT with contrast",
        "resourceId": "ServiceRequest/o1",
    }
    assert create["type"] == "create"
    assert create["description"] == "Create a draft order for lumbar spine X-ray"
    sent = service_request("o1", "ct-lumbar-with-contrast")
    created = create["resource"]
    assert created["code"]["coding"][0]["code"] == "72100"
    assert created["code"]["text"] == "Lumbar spine X-ray"
    assert "extension" not in created  # no rating claimed
    assert {key: value for key, value in created.items() if key != "code"} == {
        key: value for key, value in sent.items() if key not in ("code", "id")
    }
    (v1,) = respond(assess(findings(episode_active=False, gaps=[UNREADABLE_LBP], orders=orders), rules)).body[
        "cards"
    ]
    assert [suggestion["label"] for suggestion in v1["suggestions"]] == ["Cancel this imaging order"]


# Ratings that unchecked data would change are not written into the order. -------------------------------


def test_no_system_action_when_unchecked_data_would_change_the_rating(rules: Rules) -> None:
    orders = [
        imaging_order("mri-lumbar-without-contrast", "mri"),
        imaging_order("mri-lumbar-with-contrast", "c"),
    ]
    decision = assess(findings(unknown=["fever"], gaps=[OBSERVATIONS_GAP], orders=orders), rules)
    body = respond(decision).body
    # MRI would be appropriate with a fever: withheld. MRI with contrast is not appropriate either way.
    assert [action["resource"]["id"] for action in body["systemActions"]] == ["c"]
    mri_card = body["cards"][0]
    assert mri_card["extension"][EXTENSION_KEY]["appropriateness"] == "usually-not-appropriate"
    assert (
        "provisional; no PAMA rating was recorded on the order, since what could not be checked would change "
        "it (it would be appropriate if those findings were present)"
    ) in mri_card["detail"]
    mri, contrast = evaluate_answer(decision, assessment_id=ASSESSMENT_ID)["orders"]
    assert "pamaRating" not in mri
    assert mri["pamaRatingWithheld"] == {
        "reason": "unchecked-data",
        "description": "No PAMA rating was recorded on the order: what could not be checked would change it "
        "(it would be appropriate if those findings were present).",
    }
    assert contrast["pamaRating"] == "not-appropriate"


# Urgency that could not be checked. --------------------------------------------------------------------


def test_an_unchecked_urgent_flag_is_said_first_and_in_the_evaluate_answer(rules: Rules) -> None:
    order = imaging_order("xr-lumbar")
    decision = assess(findings(unknown=["cauda-equina"], present=["osteoporosis"], orders=[order]), rules)
    (card,) = respond(decision).body["cards"]
    first_block = card["detail"].split("\n\n")[0]
    assert first_block == (
        "**Suspected cauda equina syndrome could not be checked** (observations (temperature, weight) "
        "missing, partly supplied or unreadable). If present, this is urgent: urgent evaluation is needed; "
        "consider emergency referral."
    )
    answer = evaluate_answer(decision, assessment_id=ASSESSMENT_ID)
    assert answer["urgent"] is False
    assert answer["urgentUnchecked"] == ["cauda-equina"]


@pytest.mark.parametrize("procedure", ["mri-lumbar-without-contrast", "xr-lumbar"])
def test_an_unchecked_urgent_flag_is_named_in_the_summary_and_nothing_is_cancelled(
    rules: Rules, procedure: str
) -> None:
    """Low back pain, no red flag found, but cauda equina could not be checked: no "conservative care
    first", no physical therapy referral, no cancel: it may be urgent."""
    decision = assess(findings(unknown=["cauda-equina"], orders=[imaging_order(procedure)]), rules)
    response = respond(decision)
    (card,) = response.body["cards"]
    title = rules.procedures[procedure].title
    assert card["summary"] == (
        f"{title}: usually not appropriate for low back pain; suspected cauda equina syndrome could not be "
        "checked"
    )
    assert "suggestions" not in card
    assert response.card_ids["ServiceRequest/o1"].suggestions == ()


# The detail. -------------------------------------------------------------------------------------------


# Golden cards: a few whole cards, as a clinician reads them, reviewed as a whole in
# tests/unit/rules/golden_cards/ (regenerate with LBP_UPDATE_GOLDEN=1, then read the diff before committing).
GOLDEN_DIR = Path(__file__).parent / "golden_cards"
GOLDEN_CASES = {
    "urgent-cauda-equina-ct": "v4 ct",
    "not-appropriate-v1-ct-fever-unchecked": "v1 ct, fever unchecked",
    "not-appropriate-v2-x-ray-suggestions": "v2 x-ray",
    "single-weak-factor-x-ray": "weak factor",
    "appropriate-v7-ct-with-contrast-steered": "v7 ct",
    "low-back-pain-undetermined": "lbp undetermined",
}


def _as_read(card: dict[str, Any]) -> str:
    """The card as the EHR shows it: indicator and summary, the detail, then what it offers."""
    lines = [f"[{card['indicator']}] {card['summary']}", "", card["detail"], ""]
    for suggestion in card.get("suggestions", []):
        recommended = " (recommended)" if suggestion.get("isRecommended") else ""
        lines.append(f"> suggestion{recommended}: {suggestion['label']}")
        lines.extend(f">   - {action['type']}: {action['description']}" for action in suggestion["actions"])
    for reason in card.get("overrideReasons", []):
        lines.append(f"> override reason: {reason['code']} ({reason['display']})")
    lines.append(f"> source: {card['source']['label']} <{card['source']['url']}>")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_cards_read_as_reviewed(rules: Rules, name: str) -> None:
    (card,) = respond(assess(CASES[GOLDEN_CASES[name]](), rules)).body["cards"]
    path = GOLDEN_DIR / f"{name}.md"
    if os.environ.get("LBP_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(_as_read(card), encoding="utf-8")
    assert _as_read(card) == path.read_text(encoding="utf-8")


def test_the_detail_links_the_guideline_by_url_and_doi(rules: Rules) -> None:
    (card,) = respond(assess(CASES["v4 ct"](), rules)).body["cards"]
    assert "https://acsearch.acr.org/docs/69483/Narrative/" in card["detail"]
    assert "doi:10.1016/j.jacr.2021.08.002" in card["detail"]


@pytest.mark.parametrize(
    ("flag", "title"),
    [("age-over-50", "Age over 50"), ("unexplained-weight-loss", "Unexplained weight loss")],
)
def test_a_single_weak_factor_is_a_risk_factor_not_a_red_flag(rules: Rules, flag: str, title: str) -> None:
    decision = assess(findings(present=[flag], orders=[imaging_order("xr-lumbar")]), rules)
    (card,) = respond(decision).body["cards"]
    assert card["summary"] == (
        "Lumbar spine X-ray: usually not appropriate for low back pain, no red flags requiring imaging; "
        "try conservative care first"
    )
    detail = card["detail"]
    assert "**Red flags found**" not in detail
    assert "**Red flags requiring imaging:** none in the data supplied." in detail
    block = next(b for b in detail.split("\n\n") if b.startswith("**Risk factor, not enough alone"))
    assert block.startswith(f"**Risk factor, not enough alone to call for imaging**\n- **{title}**\n")
    assert f"Condition/{flag}" in block
    assert "ACP advises a trial of therapy" in detail


def test_a_weak_factor_beside_a_red_flag_is_listed_apart(rules: Rules) -> None:
    decision = assess(
        findings(present=["age-over-50", "osteoporosis"], orders=[imaging_order("xr-lumbar")]), rules
    )
    (card,) = respond(decision).body["cards"]
    detail = card["detail"]
    red_flags = next(b for b in detail.split("\n\n") if b.startswith("**Red flags found**"))
    assert "Osteoporosis" in red_flags
    assert "Age over 50" not in red_flags
    assert "**Risk factor, not enough alone to call for imaging**\n- **Age over 50**" in detail
    assert "ACP advises a trial of therapy" not in detail  # imaging is called for by the red flag


def test_age_over_70_is_not_followed_by_age_over_50(rules: Rules) -> None:
    decision = assess(
        findings(present=["age-over-50", "age-over-70"], age=75, orders=[imaging_order("xr-lumbar")]), rules
    )
    (card,) = respond(decision).body["cards"]
    assert "**Age over 70**" in card["detail"]
    assert "Age over 50" not in card["detail"]
    assert card["extension"][EXTENSION_KEY]["redFlags"] == ["age-over-50", "age-over-70"]  # all, as /evaluate


# Summaries name what the patient has, where it fits. --------------------------------------------------


@pytest.mark.parametrize(
    ("present", "procedure", "summary"),
    [
        (["cancer-history"], "mri-lumbar-without-contrast",
         "Lumbar MRI without contrast: usually appropriate (history of cancer)"),
        (["osteoporosis", "age-over-70"], "xr-lumbar",
         "Lumbar spine X-ray: usually appropriate (osteoporosis, age over 70)"),
        (["osteoporosis", "age-over-70", "age-over-50"], "xr-lumbar",
         "Lumbar spine X-ray: usually appropriate (osteoporosis, age over 70)"),
        (["fever", "osteoporosis"], "ct-lumbar-with-contrast",
         "Lumbar CT with contrast: may be appropriate (fever, osteoporosis); consider lumbar MRI without and "
         "with contrast"),
        (["prior-lumbar-surgery", "cancer-history"], "mri-lumbar-without-contrast",
         "Lumbar MRI without contrast: usually appropriate for prior lumbar surgery with new or progressing "
         "symptoms and history of cancer"),
    ],
)  # fmt: skip
def test_v7_and_v6_summaries_name_the_patients_triggers(
    rules: Rules, present: list[str], procedure: str, summary: str
) -> None:
    decision = assess(findings(present=present, orders=[imaging_order(procedure)]), rules)
    (card,) = respond(decision).body["cards"]
    assert card["summary"] == summary


def test_the_longest_trigger_lists_fall_back_to_the_variant_titles_under_140(rules: Rules) -> None:
    umbrella = [
        "cancer-history", "spinal-infection", "fever", "iv-drug-use", "immunosuppression",
        "unexplained-weight-loss", "age-over-50", "recent-trauma", "osteoporosis",
        "prolonged-corticosteroids", "age-over-70",
    ]  # fmt: skip
    orders = [imaging_order(procedure, procedure) for procedure in PROCEDURE_IDS]
    cases = [
        findings(present=umbrella, symptom_days=30, age=75, orders=orders),
        findings(present=umbrella[:5], orders=orders),
        findings(present=["unexplained-weight-loss", "age-over-50"], symptom_days=30, orders=orders),
        findings(present=[*umbrella, "prior-lumbar-surgery"], symptom_days=50, therapy=True, orders=orders),
    ]
    titles = [rules.variants["V7"].title, rules.variants["V6"].title]
    fell_back = 0
    for case_findings in cases:
        decision = assess(case_findings, rules)
        for card in respond(decision).body["cards"]:
            summary = card["summary"]
            assert len(summary) < 140, summary
            fell_back += any(title in summary for title in titles)
    assert fell_back  # the longest lists did not fit and gave way to the titles
    (first,) = respond(assess(findings(present=umbrella[:1], orders=orders[:1]), rules)).body["cards"]
    assert "(history of cancer)" in first["summary"]


def test_record_text_cannot_inject_markdown_into_the_detail(rules: Rules) -> None:
    decision = assess(findings(present=["fever"], orders=[imaging_order("xr-lumbar")]), rules)
    flag = decision.red_flags[0]
    hostile = Evidence("Observation/t1", display="[click me](https://evil.example) **now**\n# heading")
    flags = {**decision.findings.red_flags, "fever": type(flag)(flag.id, flag.status, (hostile,))}
    decision = assess(type(decision.findings)(**{**_fields(decision.findings), "red_flags": flags}), rules)
    (card,) = respond(decision).body["cards"]
    assert "[click me](https://evil.example)" not in card["detail"]
    assert r"\[click me\]\(https://evil.example\) \*\*now\*\* \# heading" in card["detail"]


def _fields(value: Findings) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


def test_an_unchecked_flag_no_data_gap_explains_gets_its_own_line(rules: Rules) -> None:
    decision = assess(findings(unknown=["fever"], orders=[imaging_order("xr-lumbar")]), rules)
    (card,) = respond(decision).body["cards"]
    assert "- Fever could not be checked: observations (temperature, weight) not supplied." in card["detail"]
    qualified = "- V1: acute low back pain, no red flags (among the red flags that could be checked)"
    assert qualified in card["detail"]
