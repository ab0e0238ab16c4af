"""The schemas in openapi.yaml against the CDS Hooks spec's own examples and peers' payloads.

A schema that accepted nothing, or everything, would pass the API tests' validation for the wrong reason:
these tests hold it to published examples that must pass and to known-defective ones that must fail.
"""

from __future__ import annotations

import pytest

from tests.contract.examples import load_example
from tests.support.contract import component_validator, schema_errors


def errors(schema: str, document: object) -> list[str]:
    return schema_errors(component_validator(schema), document)


@pytest.mark.parametrize("name", ["spec201_block00", "spec201_block26"])
def test_spec_discovery_examples_are_valid_discovery(name: str) -> None:
    assert errors("Discovery", load_example(name)) == []


@pytest.mark.parametrize("name", ["spec201_block09", "spec201_block16"])
def test_spec_response_examples_are_valid_cds_hooks_responses(name: str) -> None:
    assert errors("CdsHooksResponse", load_example(name)) == []


def test_spec_card_examples_are_valid_cards() -> None:
    cards = load_example("spec201_block16")["cards"]
    assert [errors("Card", card) for card in cards] == [[], []]


def test_spec_block16_is_not_an_answer_of_this_service() -> None:
    """Our cards must also carry a UUID and the lbp-imaging-cds extension; the spec's example does not."""
    problems = errors("CdsServiceResponse", load_example("spec201_block16"))
    assert "$.cards[1]: 'uuid' is a required property" in problems
    assert "$.cards[0]: 'extension' is a required property" in problems


def test_spec_block15_system_action_without_description_fails() -> None:
    assert errors("CdsHooksResponse", load_example("spec201_block15")) == [
        "$.systemActions[0]: 'description' is a required property"
    ]


def test_spec_block17_card_without_indicator_fails() -> None:
    assert errors("Card", load_example("spec201_block17")["cards"][0]) == [
        "$: 'indicator' is a required property"
    ]


@pytest.mark.parametrize("name", ["spec201_block18", "spec201_block19", "spec201_block20"])
def test_spec_feedback_examples_are_valid_feedback(name: str) -> None:
    assert errors("Feedback", load_example(name)) == []


def test_accepted_feedback_needs_accepted_suggestions() -> None:
    feedback = load_example("spec201_block18")
    del feedback["feedback"][0]["acceptedSuggestions"]
    assert errors("Feedback", feedback) == ["$.feedback[0]: 'acceptedSuggestions' is a required property"]


def test_feedback_timestamp_must_be_rfc3339() -> None:
    feedback = load_example("spec201_block19")
    feedback["feedback"][0]["outcomeTimestamp"] = "11/12/2020"
    assert errors("Feedback", feedback) == [
        "$.feedback[0].outcomeTimestamp: '11/12/2020' is not a 'date-time'"
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("spec201_block11", "create"), ("spec201_block12", "update"), ("spec201_block13", "delete")],
)
def test_spec_action_examples_are_valid_actions(name: str, kind: str) -> None:
    action = load_example(name)
    assert action["type"] == kind
    assert errors("Action", action) == []


def test_a_delete_without_resource_id_and_an_update_without_resource_fail() -> None:
    delete = load_example("spec201_block13")
    del delete["resourceId"]
    assert errors("Action", delete) == ["$: 'resourceId' is a required property"]
    update = load_example("spec201_block12")
    del update["resource"]
    assert errors("Action", update) == ["$: 'resource' is a required property"]


def test_spec_override_reasons_are_valid_and_need_a_display() -> None:
    reasons = load_example("spec201_block14")["overrideReasons"]
    assert [errors("OverrideReason", reason) for reason in reasons] == [[], []]
    without_display = {key: value for key, value in reasons[0].items() if key != "display"}
    assert errors("OverrideReason", without_display) == ["$: 'display' is a required property"]


def test_spec_source_example_is_a_valid_source() -> None:
    assert errors("Source", load_example("spec201_block10")["source"]) == []


def test_an_absolute_link_must_not_carry_app_context() -> None:
    link = dict(load_example("spec201_block16")["cards"][0]["links"][2])
    assert errors("Link", link) == []
    link["type"] = "absolute"
    assert errors("Link", link) != []


def test_inferno_valid_cards_are_valid_cards() -> None:
    cards = load_example("inferno_valid_cards")
    assert len(cards) == 7
    assert {index: errors("Card", card) for index, card in enumerate(cards)} == {
        index: [] for index in range(7)
    }


@pytest.mark.parametrize(
    "name",
    [
        "inferno_order_select_hook_request",
        "inferno_order_sign_hook_request",
        "crd_CRDServiceRequest_order-sign",
        "pama_scenario-01-outbound-request",
        "pama_scenario-02-outbound-request",
    ],
)
def test_peer_hook_requests_are_valid_hook_requests(name: str) -> None:
    assert errors("HookRequest", load_example(name)) == []


@pytest.mark.parametrize(
    "name",
    [f"library101_{hook}_block{index}" for hook in ("order-select", "order-sign") for index in range(3)],
)
def test_cds_hooks_library_contexts_are_valid_order_contexts(name: str) -> None:
    assert errors("OrderContext", load_example(name)["context"]) == []


def test_order_select_requests_need_selections() -> None:
    request = load_example("pama_scenario-01-outbound-request")
    del request["context"]["selections"]
    assert errors("HookRequest", request) == ["$.context: 'selections' is a required property"]


def test_fhir_authorization_needs_fhir_server() -> None:
    request = load_example("inferno_order_sign_hook_request")
    del request["fhirServer"]
    assert errors("HookRequest", request) == ["$: 'fhirServer' is a required property"]


def test_pama_rating_response_with_action_lacking_description_fails() -> None:
    assert (
        errors("CdsHooksResponse", load_example("pama_scenario-01-rating-response")) == []
    )  # extension is free there
    assert errors("CdsServiceResponse", load_example("pama_scenario-01-rating-response")) == [
        "$.extension.systemActions[0]: 'description' is a required property"
    ]


def test_pama_suggestions_without_selection_behavior_fail() -> None:
    card = load_example("pama_scenario-02-suggestion-response")["cards"][0]
    assert errors("Card", card) == ["$: 'selectionBehavior' is a dependency of 'suggestions'"]


def test_this_services_example_answer_is_valid() -> None:
    assert errors("CdsServiceResponse", load_example("lbp_hook_response")) == []
