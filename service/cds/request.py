"""The CDS Hooks request envelope, checked strictly; FHIR content inside is left to the mappings.

Every error names the element, e.g. `context.draftOrders.entry[2].resource`, so an integration engineer
can find it in the request they sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from service.cds.services import CdsService
from service.errors import ApiError, bad_request


@dataclass(frozen=True, slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    patient_id: str
    user_id: str  # context.userId, e.g. "Practitioner/123": the ordering clinician
    draft_orders: Mapping[str, Any]
    selections: tuple[str, ...] | None  # order-select only
    prefetch: Mapping[str, Any]
    fhir_server: str | None
    fhir_authorization: Mapping[str, Any] | None


# Text that is not blank: a character that is neither white space nor a control (openapi.yaml says the same).
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")  # FHIR resource type names: "ServiceRequest"


def _is_resource_type(value: object) -> bool:
    return isinstance(value, str) and _RESOURCE_TYPE.fullmatch(value) is not None


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_EXPECTED: dict[type, str] = {str: "a non-empty string", dict: "an object", list: "an array"}


def _require(container: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in container or container[key] is None:
        raise bad_request(f"{where} is required", where)
    value = container[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not _VISIBLE.search(value)):
        raise bad_request(f"{where} must be {_EXPECTED[kind]}", where)
    return value


def _optional(container: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if container.get(key) is None:
        return None
    return _require(container, key, kind, where)


def _check_bundle(bundle: Mapping[str, Any], where: str, max_resources: int) -> None:
    """A Bundle as real clients send it: `type` optional, each entry a resource with a resourceType."""
    resource_type = bundle.get("resourceType")
    if resource_type != "Bundle":
        raise bad_request(f"{where}.resourceType must be 'Bundle'", f"{where}.resourceType")
    if "type" in bundle and not isinstance(bundle["type"], str):
        raise bad_request(f"{where}.type must be a string", f"{where}.type")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise bad_request(f"{where}.entry must be an array", f"{where}.entry")
    if len(entries) > max_resources:
        raise ApiError(
            413,
            "payload-too-large",
            f"{where} holds {len(entries)} entries, more than the limit of {max_resources}",
            f"{where}.entry",
        )
    for index, entry in enumerate(entries):
        here = f"{where}.entry[{index}]"
        if not isinstance(entry, dict):
            raise bad_request(f"{here} must be an object", here)
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not _is_resource_type(resource.get("resourceType")):
            raise bad_request(
                f"{here}.resource must be a FHIR resource with a resourceType", f"{here}.resource"
            )


# Lumbar imaging orders judged per call. An order-sign carries a handful; each judged order costs a card
# (~4 kB), a rating and an audit row, so thousands in one call are abuse or a client bug, not clinical work.
MAX_JUDGED_ORDERS = 20


def check_order_count(count: int, where: str) -> None:
    """More lumbar imaging orders than a clinician signs at once: a 400 naming the limit, nothing judged."""
    if count > MAX_JUDGED_ORDERS:
        raise ApiError(
            400,
            "too-many-orders",
            f"{where} holds {count} lumbar imaging orders; at most {MAX_JUDGED_ORDERS} are judged per call "
            "(send them in smaller calls)",
            where,
        )


def check_unique_orders(draft_orders: Mapping[str, Any], judged: Collection[str]) -> None:
    """Two judged draft orders with one id cannot each get their own card, suggestion and rating.
    Only the orders to judge count: a duplicate id among other draft orders is none of our business."""
    seen: set[str] = set()
    for index, entry in enumerate(draft_orders.get("entry", [])):
        resource = entry["resource"]
        identifier = resource.get("id")
        reference = f"{resource['resourceType']}/{identifier}"
        if not isinstance(identifier, str) or reference not in judged:
            continue
        if reference in seen:
            here = f"context.draftOrders.entry[{index}].resource.id"
            raise bad_request(f"{here}: another draft order has the id {identifier[:64]!r}", here)
        seen.add(reference)


def check_prefetch_value(value: Any, where: str, max_resources: int) -> None:
    """A prefetch value is a resource, a Bundle, or null (the client has no data)."""
    if value is None:
        return
    if not isinstance(value, dict) or not _is_resource_type(value.get("resourceType")):
        raise bad_request(f"{where} must be a FHIR resource, a Bundle or null", where)
    if value["resourceType"] == "Bundle":
        _check_bundle(value, where, max_resources)


def parse_hook_request(body: Any, service: CdsService, *, max_resources: int) -> HookRequest:
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    hook = _require(body, "hook", str, "hook")
    if hook != service.hook:
        raise bad_request(f"hook is {hook!r} but service {service.id!r} answers {service.hook!r}", "hook")
    hook_instance = _require(body, "hookInstance", str, "hookInstance")
    if not _UUID.match(hook_instance):
        # The spec's UUID; also keeps free text (and whatever it might name) out of logs and records.
        raise bad_request("hookInstance must be a UUID", "hookInstance")
    context = _require(body, "context", dict, "context")
    patient_id = _require(context, "patientId", str, "context.patientId")
    user_id = _require(context, "userId", str, "context.userId")
    _optional(context, "encounterId", str, "context.encounterId")
    draft_orders = _require(context, "draftOrders", dict, "context.draftOrders")
    _check_bundle(draft_orders, "context.draftOrders", max_resources)

    selections: tuple[str, ...] | None = None
    if hook == "order-select":
        raw_selections = _require(context, "selections", list, "context.selections")
        for index, selection in enumerate(raw_selections):
            if not isinstance(selection, str):
                where = f"context.selections[{index}]"
                raise bad_request(f"{where} must be a string such as 'ServiceRequest/123'", where)
        selections = tuple(raw_selections)

    prefetch = _optional(body, "prefetch", dict, "prefetch") or {}
    for key, value in prefetch.items():
        check_prefetch_value(value, f"prefetch.{key}", max_resources)

    fhir_server = _optional(body, "fhirServer", str, "fhirServer")
    fhir_authorization = _optional(body, "fhirAuthorization", dict, "fhirAuthorization")
    if fhir_authorization is not None:
        if fhir_server is None:
            raise bad_request("fhirServer is required when fhirAuthorization is sent", "fhirServer")
        _require(fhir_authorization, "access_token", str, "fhirAuthorization.access_token")
        token_type = _require(fhir_authorization, "token_type", str, "fhirAuthorization.token_type")
        if token_type.lower() != "bearer":
            raise bad_request("fhirAuthorization.token_type must be 'Bearer'", "fhirAuthorization.token_type")

    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        context=context,
        patient_id=patient_id,
        user_id=user_id,
        draft_orders=draft_orders,
        selections=selections,
        prefetch=prefetch,
        fhir_server=fhir_server,
        fhir_authorization=fhir_authorization,
    )
