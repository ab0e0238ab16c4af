"""`card_rule_violations` on the spec's examples (clean), this service's example, and broken variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.examples import load_example
from tests.support.cds_rules import card_rule_violations

Mutation = Callable[[dict[str, Any]], None]


def good_response() -> dict[str, Any]:
    response: dict[str, Any] = load_example("lbp_hook_response")
    assert card_rule_violations(response) == []
    return response


@pytest.mark.parametrize("name", ["spec201_block09", "spec201_block16"])
def test_the_spec_examples_follow_the_spec_rules(name: str) -> None:
    assert card_rule_violations(load_example(name), require_uuids=False) == []


def test_by_default_every_card_needs_a_uuid() -> None:
    assert card_rule_violations(load_example("spec201_block16")) == [
        "$.cards[1].uuid: every card needs a uuid (feedback names cards by it)"
    ]


def test_this_services_example_follows_every_rule() -> None:
    assert card_rule_violations(load_example("lbp_hook_response")) == []


def test_an_empty_card_list_is_allowed() -> None:
    assert card_rule_violations({"cards": []}) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("spec201_block15", "$.systemActions[0].description: every action needs a description"),
        (
            "pama_scenario-01-rating-response",
            "$.extension.systemActions[0].description: every action needs a description",
        ),
        ("crd_CRDServiceResponse", "$.systemActions[0].description: every action needs a description"),
        ("spec201_block17", "$.cards[0].indicator: must be one of ['critical', 'info', 'warning'], got None"),
    ],
)
def test_published_examples_with_known_defects_are_caught(name: str, expected: str) -> None:
    assert card_rule_violations(load_example(name), require_uuids=False) == [expected]


def test_repeated_uuids_are_caught() -> None:
    violations = card_rule_violations({"cards": load_example("inferno_valid_cards")}, require_uuids=False)
    assert violations == [
        "$.cards[1].uuid: uuid 'jksfjuisldklsior' is already used at $.cards[0].uuid",
        "$.cards[6].uuid: uuid 'jksfghisldlrldsse' is already used at $.cards[5].uuid",
    ]


def _card(response: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = response["cards"][0]
    return card


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting `a.b[0].c` (dots and [index]) to `value`; `value=...` deletes the key."""

    def mutate(response: dict[str, Any]) -> None:
        parts = path.replace("[", ".").replace("]", "").split(".")
        node: Any = response
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        if value is ...:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


BROKEN: list[tuple[str, Mutation, str]] = [
    ("links not an array", _set("cards[0].links", "see ACR"), "$.cards[0].links: must be an array"),
    (
        "suggestion not an object",
        _set("cards[0].suggestions[1]", "cancel"),
        "$.cards[0].suggestions[1]: a suggestion must be an object",
    ),
    ("action not an object", _set("systemActions[0]", 7), "$.systemActions[0]: an action must be an object"),
    ("no cards", _set("cards", ...), "$.cards: required, and must be an array ([] when there is no advice)"),
    (
        "summary of 140 characters",
        _set("cards[0].summary", "x" * 140),
        "$.cards[0].summary: must be under 140 characters, has 140",
    ),
    ("no summary", _set("cards[0].summary", ...), "$.cards[0].summary: required text"),
    ("blank summary", _set("cards[0].summary", "   "), "$.cards[0].summary: required text"),
    (
        "unknown indicator",
        _set("cards[0].indicator", "hard-stop"),
        "$.cards[0].indicator: must be one of ['critical', 'info', 'warning'], got 'hard-stop'",
    ),
    ("no source label", _set("cards[0].source.label", ...), "$.cards[0].source.label: required text"),
    ("no source", _set("cards[0].source", ...), "$.cards[0].source.label: required text"),
    (
        "relative source url",
        _set("cards[0].source.url", "/guidelines/acr"),
        "$.cards[0].source.url: must be an absolute http(s) URL",
    ),
    (
        "card without uuid",
        _set("cards[0].uuid", ...),
        "$.cards[0].uuid: every card needs a uuid (feedback names cards by it)",
    ),
    (
        "suggestion without uuid",
        _set("cards[0].suggestions[1].uuid", ...),
        (
            "$.cards[0].suggestions[1].uuid: "
            "every suggestion needs a uuid (feedback names accepted suggestions by it)"
        ),
    ),
    (
        "suggestion without label",
        _set("cards[0].suggestions[0].label", ...),
        "$.cards[0].suggestions[0].label: required text",
    ),
    (
        "suggestions without selectionBehavior",
        _set("cards[0].selectionBehavior", ...),
        (
            "$.cards[0].selectionBehavior: "
            "required whenever there are suggestions, one of ['any', 'at-most-one'], got None"
        ),
    ),
    (
        "unknown selectionBehavior",
        _set("cards[0].selectionBehavior", "all"),
        (
            "$.cards[0].selectionBehavior: "
            "required whenever there are suggestions, one of ['any', 'at-most-one'], got 'all'"
        ),
    ),
    (
        "action without type",
        _set("cards[0].suggestions[0].actions[1].type", ...),
        "$.cards[0].suggestions[0].actions[1].type: must be one of ['create', 'delete', 'update'], got None",
    ),
    (
        "action without description",
        _set("cards[0].suggestions[0].actions[0].description", ...),
        "$.cards[0].suggestions[0].actions[0].description: every action needs a description",
    ),
    (
        "delete without resourceId",
        _set("cards[0].suggestions[1].actions[0].resourceId", ...),
        (
            "$.cards[0].suggestions[1].actions[0].resourceId: "
            "a delete action names the resource as '<type>/<id>'"
        ),
    ),
    (
        "delete with a bare id",
        _set("cards[0].suggestions[1].actions[0].resourceId", "ct-1"),
        (
            "$.cards[0].suggestions[1].actions[0].resourceId: "
            "a delete action names the resource as '<type>/<id>'"
        ),
    ),
    (
        "create without resource",
        _set("cards[0].suggestions[0].actions[1].resource", ...),
        (
            "$.cards[0].suggestions[0].actions[1].resource: "
            "create actions carry the whole resource, with its resourceType"
        ),
    ),
    (
        "system action without description",
        _set("systemActions[0].description", ...),
        "$.systemActions[0].description: every action needs a description",
    ),
    (
        "update without resource",
        _set("systemActions[0].resource", ...),
        "$.systemActions[0].resource: update actions carry the whole resource, with its resourceType",
    ),
    (
        "update of a resource without id",
        _set("systemActions[0].resource.id", ...),
        "$.systemActions[0].resource.id: an update action's resource needs the id of the resource it changes",
    ),
    (
        "sandbox copy of a system action without type",
        _set("extension.systemActions[0].type", ...),
        "$.extension.systemActions[0].type: must be one of ['create', 'delete', 'update'], got None",
    ),
    (
        "override reason without display",
        _set("cards[0].overrideReasons[1].display", ...),
        "$.cards[0].overrideReasons[1].display: every override reason needs a display",
    ),
    ("link without label", _set("cards[0].links[0].label", ...), "$.cards[0].links[0].label: required text"),
    (
        "relative link",
        _set("cards[0].links[0].url", "guideline.html"),
        "$.cards[0].links[0].url: must be an absolute http(s) URL",
    ),
    (
        "javascript link",
        _set("cards[0].links[0].url", "javascript:alert(1)"),
        "$.cards[0].links[0].url: must be an absolute http(s) URL",
    ),
    (
        "unknown link type",
        _set("cards[0].links[0].type", "web"),
        "$.cards[0].links[0].type: must be one of ['absolute', 'smart'], got 'web'",
    ),
    (
        "appContext on an absolute link",
        _set("cards[0].links[0].appContext", "{}x"),
        "$.cards[0].links[0].appContext: only allowed on smart links",
    ),
    (
        "duplicate suggestion uuid",
        _set("cards[0].suggestions[1].uuid", "0b7c1f0e-2f4c-4a55-9a3b-6f3f8c1d2e02"),
        (
            "$.cards[0].suggestions[1].uuid: "
            "uuid '0b7c1f0e-2f4c-4a55-9a3b-6f3f8c1d2e02' is already used at $.cards[0].suggestions[0].uuid"
        ),
    ),
    (
        "null detail",
        _set("cards[0].detail", None),
        "$.cards[0].detail: optional fields must be left out, not sent as null",
    ),
    (
        "empty detail",
        _set("cards[0].detail", ""),
        "$.cards[0].detail: optional fields must be left out, not sent as ''",
    ),
    (
        "empty links",
        _set("cards[0].links", []),
        "$.cards[0].links: optional fields must be left out, not sent as []",
    ),
    (
        "empty extension",
        _set("cards[0].extension", {}),
        "$.cards[0].extension: optional fields must be left out, not sent as {}",
    ),
    (
        "empty systemActions",
        _set("systemActions", []),
        "$.systemActions: optional fields must be left out, not sent as []",
    ),
    (
        "null inside a resource",
        _set("systemActions[0].resource.status", None),
        "$.systemActions[0].resource.status: optional fields must be left out, not sent as null",
    ),
    (
        "empty array inside the extension",
        _set("cards[0].extension.lbp-imaging-cds.variants", []),
        "$.cards[0].extension.lbp-imaging-cds.variants: optional fields must be left out, not sent as []",
    ),
    (
        "empty array item",
        _set("cards[0].extension.lbp-imaging-cds.variants[0]", ""),
        "$.cards[0].extension.lbp-imaging-cds.variants[0]: array items must not be ''",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(mutate, expected) for _, mutate, expected in BROKEN],
    ids=[name for name, _, _ in BROKEN],
)
def test_each_broken_rule_is_caught_and_named(mutate: Mutation, expected: str) -> None:
    response = good_response()
    mutate(response)
    assert card_rule_violations(response) == [expected]


def test_smart_links_may_carry_app_context() -> None:
    response = good_response()
    _card(response)["links"].append(
        {
            "label": "Imaging decision app",
            "url": "https://app.example.org/launch",
            "type": "smart",
            "appContext": '{"order":"ct-1"}',
        }
    )
    assert card_rule_violations(response) == []


def test_every_violation_is_reported_not_only_the_first() -> None:
    response = good_response()
    card = _card(response)
    card["summary"] = "y" * 200
    card["indicator"] = "danger"
    del card["selectionBehavior"]
    assert len(card_rule_violations(response)) == 3


def test_a_response_that_is_not_an_object_is_a_violation() -> None:
    assert card_rule_violations(["cards"]) == ["$: the response must be a JSON object, not list"]


def test_the_checker_does_not_change_its_input() -> None:
    response = good_response()
    before = copy.deepcopy(response)
    card_rule_violations(response)
    assert response == before
