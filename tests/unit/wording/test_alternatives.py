"""The engine's alternatives (kind, merits, urgent red flags) said in words: each kind's sentence, whole."""

from __future__ import annotations

import pytest

from service.rules import Rules, assess, load_rules
from service.wording.alternatives import alternative_reason
from tests.unit.rules.builders import findings, imaging_order


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


@pytest.mark.parametrize(
    ("present", "procedure", "sentence"),
    [
        (
            ["cancer-history"],
            "ct-lumbar-without-and-with-contrast",
            "Lumbar MRI without and with contrast is rated usually appropriate, whereas lumbar CT "
            "without and with contrast is rated usually not appropriate; it involves no ionising "
            "radiation; it keeps the IV contrast you ordered.",
        ),
        (
            ["osteoporosis"],
            "ct-lumbar-with-contrast",
            "Lumbar spine X-ray is rated usually appropriate, whereas lumbar CT with contrast is rated "
            "usually not appropriate; it is the first-line test (ACP 2011).",
        ),
        (
            ["cauda-equina", "osteoporosis"],
            "ct-lumbar-without-contrast",
            "Lumbar MRI without contrast is the study to get urgently for suspected cauda equina syndrome "
            "(ACP 2011), whereas lumbar CT without contrast is rated may be appropriate for it; it involves "
            "no ionising radiation.",
        ),
    ],
)
def test_a_better_or_urgent_study_is_said_against_the_order(
    rules: Rules, present: list[str], procedure: str, sentence: str
) -> None:
    (judgement,) = assess(findings(present=present, orders=[imaging_order(procedure)]), rules).orders
    assert judgement.alternative is not None
    assert alternative_reason(judgement.alternative, rules) == sentence


def test_an_equal_option_is_said_as_also_rated(rules: Rules) -> None:
    (judgement,) = assess(
        findings(present=["osteoporosis"], orders=[imaging_order("xr-lumbar")]), rules
    ).orders
    assert judgement.equal_option is not None
    assert alternative_reason(judgement.equal_option, rules) == (
        "Lumbar MRI without contrast is also rated usually appropriate; it involves no ionising radiation."
    )
