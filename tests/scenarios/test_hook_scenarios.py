"""Clinical scenarios only a CDS Hooks call can express, run through the HTTP API: a truncated prefetch
(a `next` link not followed) and site settings such as quiet mode.

A file in `data/hook/` is named `<modality>--<situation>--<outcome>.json` and holds `description`, `now`
(the day of the call), optionally `settings` (changed for the app), `request` (the order-sign body) and
`expect`:
- `cards`: per card, in order: `order`, `indicator` and any verdict fields of its `lbp-imaging-cds`
  extension; optionally `summaryStartsWith` and `detailContains` (texts the Markdown must hold);
- `ratedOrders`: the orders a PAMA rating system action is sent for (none when it is withheld).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.cds_rules import card_rule_violations

DATA = Path(__file__).resolve().parent / "data" / "hook"
SCENARIOS = sorted(DATA.glob("*.json"))
VERDICT_FIELDS = ("appropriateness", "urgent", "variants", "redFlags", "procedure", "modality")


def load(path: Path) -> dict[str, Any]:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(scenario, dict)
    return scenario


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_hook_scenario(make_client: Callable[..., FlaskClient], clock: Any, path: Path) -> None:
    scenario = load(path)
    expect = scenario["expect"]
    clock.now = datetime.combine(date.fromisoformat(scenario["now"]), time(12), tzinfo=UTC)
    client = make_client(**scenario.get("settings", {}))
    response = client.post("/cds-services/lbp-imaging-order-sign", json=scenario["request"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert card_rule_violations(body) == []

    assert len(body["cards"]) == len(expect["cards"])
    for card, expected in zip(body["cards"], expect["cards"], strict=True):
        verdict = card["extension"]["lbp-imaging-cds"]
        assert verdict["order"] == expected["order"]
        assert card["indicator"] == expected["indicator"]
        given = {key: expected[key] for key in VERDICT_FIELDS if key in expected}
        assert {key: verdict.get(key) for key in given} == given
        assert card["summary"].startswith(expected.get("summaryStartsWith", ""))
        for text in expected.get("detailContains", []):
            assert text in card["detail"], text
    rated = [f"ServiceRequest/{action['resource']['id']}" for action in body.get("systemActions", [])]
    assert rated == expect["ratedOrders"]

    # The file name states the outcome: keep it honest.
    modality, *_, outcome = path.stem.split("--")
    first = body["cards"][0]
    assert first["extension"]["lbp-imaging-cds"]["modality"].lower() == modality
    assert outcome in (first["indicator"], first["extension"]["lbp-imaging-cds"]["appropriateness"])


def test_hook_scenarios_cover_truncated_conditions_and_quiet_mode() -> None:
    scenarios = [load(path) for path in SCENARIOS]
    assert any(
        "next" in str(scenario["request"]["prefetch"]["conditions"].get("link")) for scenario in scenarios
    )
    assert any(scenario.get("settings", {}).get("quiet_when_appropriate") for scenario in scenarios)
