"""Clinical scenarios as data, each run through the HTTP API: `POST /evaluate?asOf=...` with its Bundle.

A file in `data/` is named by its expected outcome, `<modality>--<situation>--<appropriateness>.json`
(`no-order--<situation>--<modality>-<appropriateness>.json` when the Bundle holds no order), and holds
`description`, `asOf`, `bundle` (the request body), `boundaryPair` (the twin across a threshold, if any)
and `expect`:
- `variants` (ids, in order), `redFlags` (ids present, sorted), `urgent`;
- `orders`: per order, the fields the answer must carry (an `alternative` is matched on the fields given;
  `null` means the field must be absent, e.g. `pamaRating` when the rating is withheld);
- optionally `weakFactors`, `uncheckedRedFlags` and `possibleVariants` (ids), `modalities` (per
  modality, the fields given), `recommended` (the fields given), `urgentUnchecked` (ids) and
  `episodeDiagnosis` (`episode.lowBackPainDiagnosis`).
Boundary cases come in pairs (41/42 days, 37.9/38.0 °C, 50/51 and 70/71 years, 27/28 days, 89/91 days).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhir_mappings.model import PROCEDURE_IDS, RED_FLAG_IDS

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = sorted(DATA.glob("*.json"))


@cache
def load(path: Path) -> dict[str, Any]:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(scenario, dict)
    return scenario


def subset(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `actual` that `expected` speaks about, nested mappings included."""
    picked: dict[str, Any] = {}
    for key, value in expected.items():
        if value is None:  # must be absent
            picked[key] = actual.get(key)
        elif isinstance(value, Mapping) and isinstance(actual.get(key), Mapping):
            picked[key] = subset(actual[key], value)
        else:
            picked[key] = actual.get(key, "<missing>")
    return picked


def outcome_from_name(path: Path) -> tuple[str, str]:
    """(modality or "no-order", outcome) as the file name states them."""
    first, *_, last = path.stem.split("--")
    return first, last


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario(client: FlaskClient, path: Path) -> None:
    scenario = load(path)
    expect = scenario["expect"]
    response = client.post(f"/evaluate?asOf={scenario['asOf']}", json=scenario["bundle"])
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()

    assert answer["asOf"] == scenario["asOf"]
    assert [variant["id"] for variant in answer["variants"]] == expect["variants"]
    assert sorted(flag["id"] for flag in answer["redFlags"]) == expect["redFlags"]
    assert all(flag["evidence"] for flag in answer["redFlags"]), "every red flag names its evidence"
    assert answer["urgent"] is expect["urgent"]
    assert len(answer["orders"]) == len(expect["orders"])
    for actual, expected in zip(answer["orders"], expect["orders"], strict=True):
        assert subset(actual, expected) == expected
    for key in ("weakFactors", "uncheckedRedFlags", "possibleVariants"):
        if key in expect:
            assert [item if isinstance(item, str) else item["id"] for item in answer[key]] == expect[key], key
    if "modalities" in expect:
        assert subset(answer["modalities"], expect["modalities"]) == expect["modalities"]
    if "recommended" in expect:
        assert subset(answer["recommended"], expect["recommended"]) == expect["recommended"]
    if "urgentUnchecked" in expect:
        assert answer["urgentUnchecked"] == expect["urgentUnchecked"]
    if "episodeDiagnosis" in expect:
        assert answer["episode"]["lowBackPainDiagnosis"] == expect["episodeDiagnosis"]

    # The file name states the outcome: keep it honest.
    modality, outcome = outcome_from_name(path)
    if answer["orders"]:
        assert modality == answer["orders"][0]["modality"].lower()
        assert outcome == answer["orders"][0]["appropriateness"]
    else:
        assert modality == "no-order"
        recommended = answer["modalities"][outcome.split("-", 1)[0].upper()]
        assert outcome.split("-", 1)[1] == recommended["appropriateness"]


# The CDS Hooks twin: the same record as prefetch, the same orders as draftOrders. --------------------------
PREFETCH_KEYS = {
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "Procedure": "procedures",
    "ServiceRequest": "therapyRequests",
}
WITH_ORDERS = [path for path in SCENARIOS if load(path)["expect"]["orders"]]


def hook_request(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """An order-sign call carrying the scenario's Bundle: kinds it lacks are left out, as not supplied."""
    resources = [entry["resource"] for entry in scenario["bundle"]["entry"]]
    orders = {f"ServiceRequest/{order['order'].split('/', 1)[1]}" for order in scenario["expect"]["orders"]}
    drafts = [resource for resource in resources if f"{resource['resourceType']}/{resource['id']}" in orders]
    prefetch: dict[str, Any] = {}
    for resource in resources:
        if resource["resourceType"] == "Patient":
            prefetch["patient"] = resource
        elif resource not in drafts:
            key = PREFETCH_KEYS[resource["resourceType"]]
            prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
            prefetch[key]["entry"].append({"resource": resource})
    # A kind fed by two keys (medications) is supplied as a whole, as in the Bundle. The service needs
    # the conditions key: for a Bundle without Conditions ("not supplied") the nearest a hook can say is
    # a result whose next page was not read, so none of it proves an absence either.
    for key in ("medicationRequests", "medicationStatements"):
        if "medicationRequests" in prefetch or "medicationStatements" in prefetch:
            prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
    prefetch.setdefault("conditions", {"resourceType": "Bundle", "type": "searchset", "entry": [], "link": [
        {"relation": "next", "url": "https://ehr.example.org/fhir/Condition?patient=p1&page=2"}
    ]})  # fmt: skip
    return {
        "hook": "order-sign",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/example",
            "patientId": prefetch["patient"]["id"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft} for draft in drafts]},
        },
        "prefetch": prefetch,
    }


@pytest.mark.parametrize("path", WITH_ORDERS, ids=[path.stem for path in WITH_ORDERS])
def test_the_hook_card_says_what_evaluate_says(client: FlaskClient, clock: Any, path: Path) -> None:
    scenario = load(path)
    clock.now = datetime.combine(
        date.fromisoformat(scenario["asOf"]), time(12), tzinfo=UTC
    )  # hooks have no asOf
    evaluated = client.post(f"/evaluate?asOf={scenario['asOf']}", json=scenario["bundle"]).get_json()
    response = client.post("/cds-services/lbp-imaging-order-sign", json=hook_request(scenario))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    cards = {card["extension"]["lbp-imaging-cds"]["order"]: card for card in body["cards"]}
    ratings = {
        f"ServiceRequest/{action['resource']['id']}": action["resource"]["extension"][-2][
            "valueCodeableConcept"
        ]
        for action in body.get("systemActions", [])
    }
    for order in evaluated["orders"]:
        card = cards[order["order"]]
        verdict = {
            key: value for key, value in card["extension"]["lbp-imaging-cds"].items() if key != "assessmentId"
        }
        assert {key: order[key] for key in verdict} == verdict
        assert (card["summary"], card["indicator"]) == (order["summary"], order["indicator"])
        if "pamaRating" in order:
            assert ratings[order["order"]]["coding"][0]["code"] == order["pamaRating"]
        else:  # withheld: no rating is written into the order
            assert order["order"] not in ratings
            assert "PAMA rating was recorded" in card["detail"]


def test_scenarios_cover_every_variant_red_flag_procedure_modality_and_no_criteria() -> None:
    expectations = [load(path)["expect"] for path in SCENARIOS]
    orders = [order for expect in expectations for order in expect["orders"]]
    assert {variant for expect in expectations for variant in expect["variants"]} == {
        "V1", "V2", "V3", "V4", "V5", "V6", "V7", "neuro",
    }  # fmt: skip
    assert {flag for expect in expectations for flag in expect["redFlags"]} == set(RED_FLAG_IDS)
    assert {order["procedure"] for order in orders} == set(PROCEDURE_IDS)
    assert {order["modality"] for order in orders} == {"XR", "MRI", "CT"}
    assert "no-criteria-apply" in {order["appropriateness"] for order in orders}
    assert any(not expect["orders"] for expect in expectations), "a Bundle without an order"
    assert any(expect.get("uncheckedRedFlags") for expect in expectations), (
        "a Bundle that leaves flags unchecked"
    )


def test_every_boundary_scenario_has_its_twin_with_the_other_outcome() -> None:
    """A threshold is only tested by a pair: one case on each side, with different outcomes."""
    by_name = {path.stem: path for path in SCENARIOS}
    paired = [path for path in SCENARIOS if "boundaryPair" in load(path)]
    assert len(paired) >= 10
    for path in paired:
        twin = by_name[load(path)["boundaryPair"]]
        assert load(twin)["boundaryPair"] == path.stem
        assert outcome_from_name(twin)[1] != outcome_from_name(path)[1]
