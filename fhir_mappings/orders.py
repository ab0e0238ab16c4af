"""Draft orders -> lumbar-spine imaging procedures, and what an order's reason says.

Runs before any FHIR fetch to decide whether a hook call has anything to judge, so it only walks dicts:
no validation, and it tolerates `code.coding: [{}]`, `reasonCode: []` and missing ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.criteria import LOW_BACK_PAIN, condition_value_sets, flags_by_value_set
from fhir_mappings.fhirjson import (
    Coding,
    Resource,
    as_dict,
    as_list,
    as_text,
    child,
    codings,
    concept_codes,
    reference_key,
    resource_id,
    resource_type,
)
from fhir_mappings.model import PROCEDURE_IDS, ImagingOrder, OrderCoding
from fhir_mappings.registry import PROCEDURE_MODALITY
from fhir_mappings.terminology import CPT, LOINC, SNOMED, code_index

# CPT names the contrast phase most reliably; LOINC and SNOMED CT are used when no CPT coding is known.
_SYSTEM_PRIORITY = (CPT, LOINC, SNOMED)
_IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})

Resolver = Callable[[str], Resource | None]  # "Condition/x" -> the Condition in the record, if any


def procedure_value_set(procedure: str) -> str:
    return f"order-{procedure}"


def lumbar_imaging_coding(service_request: Any) -> tuple[str, OrderCoding] | None:
    """The procedure id and the coding that names it, when a ServiceRequest is lumbar-spine imaging."""
    index = code_index(*(procedure_value_set(procedure) for procedure in PROCEDURE_IDS))
    best: tuple[int, str, OrderCoding] | None = None
    for system, code, display in codings(child(service_request, "code")):
        if system not in _SYSTEM_PRIORITY or code is None:
            continue
        matched = index.matching(system, code)
        if not matched:
            continue
        rank = _SYSTEM_PRIORITY.index(system)
        if best is None or rank < best[0]:
            procedure = min(matched).removeprefix("order-")
            best = (rank, procedure, OrderCoding(system, code.strip(), display))
    return None if best is None else (best[1], best[2])


def is_lumbar_imaging(resource: Any) -> bool:
    return resource_type(resource) == "ServiceRequest" and lumbar_imaging_coding(resource) is not None


@dataclass(frozen=True, slots=True)
class ReasonFinding:
    """One coding of an order's reason that names low back pain or a red flag."""

    coding: Coding
    via: str  # "reasonCode", or the resolved reasonReference ("Condition/x", "#x")
    names_low_back_pain: bool
    red_flags: tuple[str, ...]


def reason_findings(service_request: Resource, resolve: Resolver | None = None) -> list[ReasonFinding]:
    """What the order's reasonCode and reasonReference (contained, or resolved by `resolve`) name."""
    index = code_index(*condition_value_sets())
    flags_of = flags_by_value_set()
    found: list[ReasonFinding] = []
    for via, concept in _reason_concepts(service_request, resolve):
        for system, code, display in codings(concept):
            matched = index.matching(system, code)
            flags = tuple(sorted({flag for vs_id in matched for flag in flags_of.get(vs_id, ())}))
            if LOW_BACK_PAIN in matched or flags:
                found.append(ReasonFinding((system, code, display), via, LOW_BACK_PAIN in matched, flags))
    return found


def _reason_concepts(service_request: Resource, resolve: Resolver | None) -> Iterator[tuple[str, Any]]:
    for concept in as_list(service_request.get("reasonCode")):
        yield "reasonCode", concept
    contained = {
        f"#{identifier}": item
        for item in as_list(service_request.get("contained"))
        if (identifier := resource_id(item)) is not None
    }
    for reference in as_list(service_request.get("reasonReference")):
        key = reference_key(reference)
        if key is None:
            continue
        condition = contained.get(key) if key.startswith("#") else resolve(key) if resolve else None
        if resource_type(condition) != "Condition":
            continue  # reasons may also point at Observations or reports: not read here
        if concept_codes(child(condition, "verificationStatus")) & _IGNORED_VERIFICATION:
            continue
        yield key, child(condition, "code")


def service_requests_in(draft_orders: Any) -> Iterator[tuple[Resource, str | None]]:
    """(ServiceRequest, Bundle entry fullUrl) from a draftOrders Bundle (any `type`) or a list."""
    if isinstance(draft_orders, Mapping):
        items = as_list(draft_orders.get("entry"))
    elif isinstance(draft_orders, list):
        items = draft_orders
    else:
        return
    for item in items:
        entry = as_dict(item)
        if entry is None:
            continue
        resource = as_dict(entry.get("resource")) if "resource" in entry else entry
        if resource is not None and resource_type(resource) == "ServiceRequest":
            yield resource, as_text(entry.get("fullUrl"))


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FULL_URL = re.compile(
    r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|https?://\S+"
)


def _order_reference(resource: Resource, full_url: str | None, position: int) -> str:
    """`ServiceRequest/<id>` for a FHIR id; else the entry's fullUrl when it is a URL or UUID URN; else
    the order's position, so an odd id never reaches a card, a log line or the audit store."""
    identifier = resource_id(resource)
    if identifier is not None and _FHIR_ID.fullmatch(identifier):
        return f"ServiceRequest/{identifier}"
    if full_url is not None and _FULL_URL.fullmatch(full_url):
        return full_url
    return f"ServiceRequest/#draft-order-{position}"


def _is_selected(reference: str, selections: Collection[str]) -> bool:
    # Selections name "ServiceRequest/<id>"; some clients send the absolute URL instead.
    return any(
        isinstance(item, str) and (item == reference or item.endswith("/" + reference)) for item in selections
    )


def imaging_orders(draft_orders: Any, selections: Collection[str] | None = None) -> list[ImagingOrder]:
    """The draft ServiceRequests that are lumbar-spine imaging (only the selected ones, when given).

    An order without an id is named by its Bundle entry's fullUrl, else `ServiceRequest/#draft-order-<n>`
    (n counts ServiceRequests from 1); it can then only be selected by that name.
    """
    orders: list[ImagingOrder] = []
    for position, (resource, full_url) in enumerate(service_requests_in(draft_orders), start=1):
        recognised = lumbar_imaging_coding(resource)
        if recognised is None:
            continue
        reference = _order_reference(resource, full_url, position)
        if selections is not None and not _is_selected(reference, selections):
            continue
        procedure, coding = recognised
        reasons = reason_findings(resource)
        orders.append(
            ImagingOrder(
                reference=reference,
                resource_id=resource_id(resource),
                modality=PROCEDURE_MODALITY[procedure],
                procedure=procedure,
                coding=coding,
                reason_names_low_back_pain=any(reason.names_low_back_pain for reason in reasons),
                reason_red_flags=tuple(sorted({flag for reason in reasons for flag in reason.red_flags})),
                resource=resource,
            )
        )
    return orders
