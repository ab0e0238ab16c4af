"""The CDS Hooks 2.0 card rules, checked on a whole service response.

JSON Schema (openapi.yaml) checks shapes; these are the rules a schema states poorly or not at all, each
reported with the JSON path where it is broken. Sources: CDS Hooks 2.0.1 "CDS Service Response" (cards,
suggestions, actions, links, override reasons, system actions) and its rule that optional fields are
omitted rather than sent empty; the uuid requirement is this project's (feedback links cards through it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

SUMMARY_LIMIT = 140  # "<140 characters"
INDICATORS = frozenset({"info", "warning", "critical"})
SELECTION_BEHAVIORS = frozenset({"at-most-one", "any"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
LINK_TYPES = frozenset({"absolute", "smart"})


def card_rule_violations(response_json: Any, *, require_uuids: bool = True) -> list[str]:
    """Every broken card rule in a CDS service response, as `"<json path>: <rule>"`; `[]` when it is clean.

    `response_json` is the parsed body (normally a dict; anything else is itself a violation).

    `require_uuids=False` applies the spec's own rules only (uuids are optional there), for checking
    third-party examples.
    """
    if not isinstance(response_json, Mapping):
        return [f"$: the response must be a JSON object, not {type(response_json).__name__}"]
    violations = list(_empty_values(response_json, "$", top_level=True))
    cards = response_json.get("cards")
    if not isinstance(cards, list):
        violations.append("$.cards: required, and must be an array ([] when there is no advice)")
        cards = []
    for index, card in enumerate(cards):
        violations.extend(_card_violations(card, f"$.cards[{index}]", require_uuids=require_uuids))
    violations.extend(_system_action_violations(response_json))
    violations.extend(_duplicate_uuids(cards))
    return violations


def _empty_values(node: Any, path: str, *, top_level: bool = False) -> Iterator[str]:
    """Optional fields are left out, never sent as null, "", [] or {} (the one exception: `cards: []`)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = f"{path}.{key}"
            if _is_empty(value) and not (top_level and key == "cards" and value == []):
                yield f"{child}: optional fields must be left out, not sent as {_show(value)}"
            else:
                yield from _empty_values(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            child = f"{path}[{index}]"
            if _is_empty(value):
                yield f"{child}: array items must not be {_show(value)}"
            else:
                yield from _empty_values(value, child)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


def _card_violations(card: Any, path: str, *, require_uuids: bool) -> Iterator[str]:
    if not isinstance(card, Mapping):
        yield f"{path}: a card must be an object"
        return
    if require_uuids and not _is_text(card.get("uuid")):
        yield f"{path}.uuid: every card needs a uuid (feedback names cards by it)"
    summary = card.get("summary")
    if not _is_text(summary):
        yield f"{path}.summary: required text"
    elif len(summary) >= SUMMARY_LIMIT:
        yield f"{path}.summary: must be under {SUMMARY_LIMIT} characters, has {len(summary)}"
    if card.get("indicator") not in INDICATORS:
        yield f"{path}.indicator: must be one of {sorted(INDICATORS)}, got {card.get('indicator')!r}"
    source = card.get("source")
    if not isinstance(source, Mapping) or not _is_text(source.get("label")):
        yield f"{path}.source.label: required text"
    elif "url" in source and not _is_absolute_url(source["url"]):
        yield f"{path}.source.url: must be an absolute http(s) URL"
    yield from _suggestion_violations(card, path, require_uuids=require_uuids)
    yield from _override_reason_violations(card.get("overrideReasons"), f"{path}.overrideReasons")
    yield from _link_violations(card.get("links"), f"{path}.links")


def _objects(value: Any, path: str, noun: str) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
    """The items of an optional array field with their paths; `None` for an item that is not an object.

    Shape problems come out as `(message, None)` pairs so each rule below only reads well-formed items.
    """
    if value is None:
        return
    if not isinstance(value, list):
        yield f"{path}: must be an array", None
        return
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(item, Mapping):
            yield where, item
        else:
            yield f"{where}: {noun} must be an object", None


def _suggestion_violations(card: Mapping[str, Any], path: str, *, require_uuids: bool) -> Iterator[str]:
    suggestions = card.get("suggestions")
    if suggestions and card.get("selectionBehavior") not in SELECTION_BEHAVIORS:
        yield (
            f"{path}.selectionBehavior: required whenever there are suggestions, one of "
            f"{sorted(SELECTION_BEHAVIORS)}, got {card.get('selectionBehavior')!r}"
        )
    for where, suggestion in _objects(suggestions, f"{path}.suggestions", "a suggestion"):
        if suggestion is None:
            yield where
            continue
        if not _is_text(suggestion.get("label")):
            yield f"{where}.label: required text"
        if require_uuids and not _is_text(suggestion.get("uuid")):
            yield f"{where}.uuid: every suggestion needs a uuid (feedback names accepted suggestions by it)"
        yield from _actions_violations(suggestion.get("actions"), f"{where}.actions")


def _system_action_violations(response_json: Mapping[str, Any]) -> Iterator[str]:
    yield from _actions_violations(response_json.get("systemActions"), "$.systemActions")
    extension = response_json.get("extension")
    if isinstance(extension, Mapping):
        # The pre-2.0 location the CDS Hooks Sandbox reads; the same rules apply.
        yield from _actions_violations(extension.get("systemActions"), "$.extension.systemActions")


def _actions_violations(actions: Any, path: str) -> Iterator[str]:
    for where, action in _objects(actions, path, "an action"):
        if action is None:
            yield where
            continue
        kind = action.get("type")
        if kind not in ACTION_TYPES:
            yield f"{where}.type: must be one of {sorted(ACTION_TYPES)}, got {kind!r}"
        if not _is_text(action.get("description")):
            yield f"{where}.description: every action needs a description"
        yield from _action_target_violations(action, where, kind)


def _action_target_violations(action: Mapping[str, Any], path: str, kind: Any) -> Iterator[str]:
    if kind == "delete":
        resource_id = action.get("resourceId")
        if not _is_text(resource_id) or "/" not in resource_id:
            yield f"{path}.resourceId: a delete action names the resource as '<type>/<id>'"
    elif kind in ("create", "update"):
        resource = action.get("resource")
        if not isinstance(resource, Mapping) or not _is_text(resource.get("resourceType")):
            yield f"{path}.resource: {kind} actions carry the whole resource, with its resourceType"
        elif kind == "update" and not _is_text(resource.get("id")):
            yield f"{path}.resource.id: an update action's resource needs the id of the resource it changes"


def _override_reason_violations(reasons: Any, path: str) -> Iterator[str]:
    for where, reason in _objects(reasons, path, "an override reason"):
        if reason is None:
            yield where
        elif not _is_text(reason.get("display")):
            yield f"{where}.display: every override reason needs a display"


def _link_violations(links: Any, path: str) -> Iterator[str]:
    for where, link in _objects(links, path, "a link"):
        if link is None:
            yield where
            continue
        if not _is_text(link.get("label")):
            yield f"{where}.label: required text"
        if not _is_absolute_url(link.get("url")):
            yield f"{where}.url: must be an absolute http(s) URL"
        kind = link.get("type")
        if kind not in LINK_TYPES:
            yield f"{where}.type: must be one of {sorted(LINK_TYPES)}, got {kind!r}"
        if "appContext" in link and kind != "smart":
            yield f"{where}.appContext: only allowed on smart links"


def _duplicate_uuids(cards: list[Any]) -> Iterator[str]:
    """A uuid names one card or suggestion: a repeat would link feedback to the wrong one."""
    seen: dict[str, str] = {}
    for card_index, card in enumerate(cards):
        if not isinstance(card, Mapping):
            continue
        named = [(f"$.cards[{card_index}].uuid", card.get("uuid"))]
        suggestions = card.get("suggestions")
        if isinstance(suggestions, list):
            named += [
                (f"$.cards[{card_index}].suggestions[{index}].uuid", suggestion.get("uuid"))
                for index, suggestion in enumerate(suggestions)
                if isinstance(suggestion, Mapping)
            ]
        for path, uuid in named:
            if not _is_text(uuid):
                continue
            if uuid in seen:
                yield f"{path}: uuid {uuid!r} is already used at {seen[uuid]}"
            else:
                seen[uuid] = path


def _is_text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _is_absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
