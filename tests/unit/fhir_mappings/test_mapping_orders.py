"""Draft orders -> lumbar imaging procedures, and what an order's reason names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings import findings, imaging_orders, is_lumbar_imaging
from fhir_mappings.model import PROCEDURE_IDS, FlagStatus
from tests.support.fhir_records import (
    AS_OF,
    CPT,
    ICD10,
    LOINC,
    SNOMED,
    bundle,
    concept,
    condition,
    full_record,
    service_request,
)

REFERENCE_EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "reference-examples"

ORDER_CODES = [
    *[(CPT, code, "XR", "xr-lumbar") for code in ("72100", "72110", "72114", "72120")],
    (CPT, "72148", "MRI", "mri-lumbar-without-contrast"),
    (CPT, "72149", "MRI", "mri-lumbar-with-contrast"),
    (CPT, "72158", "MRI", "mri-lumbar-without-and-with-contrast"),
    (CPT, "72131", "CT", "ct-lumbar-without-contrast"),
    (CPT, "72132", "CT", "ct-lumbar-with-contrast"),
    (CPT, "72133", "CT", "ct-lumbar-without-and-with-contrast"),
    (LOINC, "30679-5", "MRI", "mri-lumbar-without-contrast"),
    (LOINC, "30678-7", "MRI", "mri-lumbar-with-contrast"),
    (LOINC, "24967-2", "MRI", "mri-lumbar-without-and-with-contrast"),
    (LOINC, "30620-9", "CT", "ct-lumbar-without-contrast"),
    (LOINC, "24964-9", "CT", "ct-lumbar-with-contrast"),
    (LOINC, "36402-6", "CT", "ct-lumbar-without-and-with-contrast"),
    (LOINC, "24965-6", "CT", "ct-myelography-lumbar"),
    *[
        (LOINC, code, "XR", "xr-lumbar")
        for code in ("24970-6", "30775-1", "36332-5", "30797-5", "24972-2", "24971-4")
    ],
    (SNOMED, "394451000119106", "MRI", "mri-lumbar-without-contrast"),
    (SNOMED, "41333006", "MRI", "mri-lumbar-with-contrast"),
    (SNOMED, "572091000119106", "CT", "ct-lumbar-without-contrast"),
    (SNOMED, "90523008", "CT", "ct-lumbar-with-contrast"),
    (SNOMED, "241592002", "CT", "ct-myelography-lumbar"),
]


@pytest.mark.parametrize(("system", "code", "modality", "procedure"), ORDER_CODES)
def test_each_listed_code_is_its_procedure(system: str, code: str, modality: str, procedure: str) -> None:
    (order,) = imaging_orders(bundle(service_request(code, system, id="o1"), type="collection"))
    assert (order.modality, order.procedure) == (modality, procedure)
    assert (order.coding.system, order.coding.code) == (system, code)
    assert order.reference == "ServiceRequest/o1"


def test_every_procedure_id_is_reachable() -> None:
    assert {procedure for *_, procedure in ORDER_CODES} == set(PROCEDURE_IDS)


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (LOINC, "24968-0"),  # MR L-spine, contrast unspecified
        (LOINC, "24531-6"),  # wrong LOINC seen in public repositories
        (CPT, "72141"),  # MRI cervical spine
        (CPT, "72147"),  # MRI thoracic spine with contrast
        (SNOMED, "840361000"),  # disputed X-ray concept
        ("http://example.org/local-codes", "72148"),  # right code, wrong system
    ],
)
def test_other_codes_are_not_lumbar_imaging(system: str, code: str) -> None:
    request = service_request(code, system)
    assert imaging_orders([request]) == []
    assert not is_lumbar_imaging(request)


def test_cpt_wins_over_other_codings_of_the_same_order() -> None:
    request = service_request("30679-5", LOINC)
    request["code"]["coding"].append({"system": CPT, "code": "72158"})
    (order,) = imaging_orders([request])
    assert order.procedure == "mri-lumbar-without-and-with-contrast"


@pytest.mark.parametrize(
    "draft_orders",
    [
        pytest.param(
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "ServiceRequest", "code": {"coding": [{}]}}}],
            },
            id="coding with empty object",
        ),
        pytest.param(
            [{"resourceType": "ServiceRequest", "code": {"coding": "72148"}}], id="coding not a list"
        ),
        pytest.param([{"resourceType": "ServiceRequest"}], id="no code"),
        pytest.param(
            [{"resourceType": "MedicationRequest", "code": concept("72148", CPT)}], id="not a ServiceRequest"
        ),
        pytest.param("not an order", id="a string"),
        pytest.param(None, id="none"),
        pytest.param({"entry": "x"}, id="entry not a list"),
        pytest.param([None, 3, "x", {"resource": None}], id="junk entries"),
    ],
)
def test_odd_draft_orders_give_no_orders_and_no_error(draft_orders: Any) -> None:
    assert imaging_orders(draft_orders) == []


def test_missing_id_reason_lists_and_bundle_without_type_are_tolerated() -> None:
    request = service_request("72148", CPT, reasonCode=[])
    del request["id"]
    (order,) = imaging_orders(
        {
            "resourceType": "Bundle",
            "entry": [{"fullUrl": "urn:uuid:0a6e2d4c-1b3f-4e5a-8c7d-9e0f1a2b3c4d", "resource": request}],
        }
    )
    assert order.reference == "urn:uuid:0a6e2d4c-1b3f-4e5a-8c7d-9e0f1a2b3c4d"
    assert order.resource_id is None
    assert order.reason_red_flags == ()
    assert not order.reason_names_low_back_pain
    (unnamed,) = imaging_orders([request])
    assert unnamed.reference == "ServiceRequest/#draft-order-1"


def test_selections_keep_only_the_named_orders() -> None:
    draft = bundle(
        service_request("72148", id="a"), service_request("72100", id="b"), service_request("72131", id="c")
    )
    assert [o.reference for o in imaging_orders(draft, ["ServiceRequest/b"])] == ["ServiceRequest/b"]
    assert [o.reference for o in imaging_orders(draft, ["http://ehr/fhir/ServiceRequest/c"])] == [
        "ServiceRequest/c"
    ]
    assert imaging_orders(draft, []) == []
    assert len(imaging_orders(draft)) == 3


def test_reason_code_names_low_back_pain_and_red_flags() -> None:
    request = service_request("72148", reason_codes=[("M54.50", ICD10), ("G83.4", ICD10), ("R50.9", ICD10)])
    (order,) = imaging_orders([request])
    assert order.reason_names_low_back_pain
    assert order.reason_red_flags == ("cauda-equina", "fever")
    assert order.resource is request


def test_red_flag_named_in_reason_is_present_with_the_order_as_evidence() -> None:
    (order,) = imaging_orders(
        [service_request("72148", id="o9", authored=0, reason_codes=[("G83.4", ICD10)])]
    )
    result = findings(full_record(), [order], AS_OF)
    flag = result.red_flags["cauda-equina"]
    assert flag.status is FlagStatus.PRESENT
    (evidence,) = flag.evidence
    assert (evidence.reference, evidence.code, evidence.detail) == (
        "ServiceRequest/o9",
        "G83.4",
        "named as the reason for this order",
    )


def test_reason_reference_is_resolved_against_the_record() -> None:
    cancer = condition("C79.51", id="met1", onset=30)
    pain = condition("M54.50", id="lbp1", onset=30)
    request = service_request(
        "72158", id="o1", reasonReference=[{"reference": "Condition/met1"}, {"reference": "Condition/lbp1"}]
    )
    (order,) = imaging_orders([request])
    assert order.reason_red_flags == ()
    assert not order.reason_names_low_back_pain
    result = findings(full_record(conditions=[cancer, pain]), [order], AS_OF)
    (resolved,) = result.orders
    assert resolved.reason_red_flags == ("cancer-history",)
    assert resolved.reason_names_low_back_pain
    details = [e.detail for e in result.red_flags["cancer-history"].evidence]
    assert "named as the reason for this order (Condition/met1)" in details


def test_refuted_or_missing_reason_reference_names_nothing() -> None:
    refuted = condition("C79.51", id="r1", verification="refuted")
    request = service_request(
        "72158",
        reasonReference=[{"reference": "Condition/r1"}, {"reference": "Condition/nowhere"}, {"display": "x"}],
    )
    result = findings(full_record(conditions=[refuted]), imaging_orders([request]), AS_OF)
    assert result.orders[0].reason_red_flags == ()
    assert result.red_flags["cancer-history"].status is FlagStatus.ABSENT


def test_contained_reason_reference() -> None:
    request = service_request(
        "72148",
        contained=[
            {
                "resourceType": "Condition",
                "id": "r",
                "subject": {"reference": "Patient/p1"},
                "code": concept("M54.50"),
            }
        ],
        reasonReference=[{"reference": "#r"}],
    )
    (order,) = imaging_orders([request])
    assert order.reason_names_low_back_pain


@pytest.mark.parametrize(
    "name",
    [
        "inferno_order_select_hook_request.json",
        "inferno_order_sign_hook_request.json",
        "crd_CRDServiceRequest_order-sign.json",
        "library101_order-select_block0.json",
        "library101_order-sign_block0.json",
    ],
)
def test_published_examples_without_lumbar_imaging_give_no_orders(name: str) -> None:
    context = json.loads((REFERENCE_EXAMPLES / name).read_text()).get("context", {})
    assert imaging_orders(context.get("draftOrders"), context.get("selections")) == []


def test_published_pama_example_is_a_lumbar_ct_for_low_back_pain() -> None:
    request = json.loads((REFERENCE_EXAMPLES / "pama_scenario-01-outbound-request.json").read_text())
    (order,) = imaging_orders(request["context"]["draftOrders"], request["context"].get("selections"))
    assert (order.modality, order.procedure) == ("CT", "ct-lumbar-without-and-with-contrast")
    assert order.reason_names_low_back_pain


@pytest.mark.parametrize(
    ("identifier", "full_url"),
    [("x/y", None), ("a" * 65, None), ("s 1", None), (None, "urn:uuid:1"), (None, "not a url")],
)
def test_an_order_without_a_usable_id_or_url_is_named_by_its_position(
    identifier: str | None, full_url: str | None
) -> None:
    request = service_request("72148", CPT)
    if identifier is None:
        request.pop("id", None)
    else:
        request["id"] = identifier
    entry: dict[str, Any] = {"resource": request}
    if full_url is not None:
        entry["fullUrl"] = full_url
    (order,) = imaging_orders({"resourceType": "Bundle", "entry": [entry]})
    assert order.reference == "ServiceRequest/#draft-order-1"
