"""The red-flag criteria: which value sets, statuses, windows and thresholds make each red flag present.

This is clinical knowledge kept as a declarative table, apart from the code that applies it. Sources:
lbp-imaging-cds issue 3 (red-flag table), which draws on ACP/APS 2007 and ACP 2011 (Chou R et al., Ann
Intern Med 2007;147:478-491 and 2011;154:181-189), the ACR Appropriateness Criteria "Low Back Pain" 2021
variants, and the CMS166v7 exclusion windows (eCQM update May 2017); see each entry's `source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from types import MappingProxyType

from fhir_mappings.model import RED_FLAG_IDS, InputKind
from fhir_mappings.terminology import ValueSetError, load_value_sets


class Timing(StrEnum):
    """When a Condition counts (refuted and entered-in-error Conditions never count)."""

    ACTIVE = "active"  # clinically active, whatever its date
    EVER = "ever"  # any clinical status (history counts), whatever its date
    ACTIVE_WITHIN = "active-within"  # clinically active and onset or recorded date within the window
    WITHIN = "within"  # any clinical status, onset or recorded date within the window
    ACTIVE_OR_WITHIN = "active-or-within"  # clinically active, or onset or recorded date within the window


@dataclass(frozen=True, slots=True)
class ConditionCriterion:
    value_set: str
    timing: Timing
    window_days: int = 0  # for the timings with a window: how many days back from the evaluation date

    def __post_init__(self) -> None:
        windowed = self.timing in (Timing.ACTIVE_WITHIN, Timing.WITHIN, Timing.ACTIVE_OR_WITHIN)
        if windowed != (self.window_days > 0):
            raise ValueError(f"criterion {self.value_set}: a window of days goes with a windowed timing")


@dataclass(frozen=True, slots=True)
class RedFlagDefinition:
    id: str
    title: str  # in a clinician's words, for data-gap text
    inputs: tuple[InputKind, ...]  # the inputs that could show it
    conditions: tuple[ConditionCriterion, ...]
    source: str


# Thresholds outside the Condition table (issue 3; see `source` of the flag that uses each).
FEVER_MIN_CELSIUS = Decimal("38.0")  # 100.4 degF; common practice (AHCPR 1994 used > 100 degF)
FEVER_WINDOW_DAYS = 7
WEIGHT_LOSS_MIN_FRACTION = Decimal("0.05")
WEIGHT_LOSS_WINDOW_DAYS = 180
STEROID_MIN_DAYS = 90  # CMS166v7: corticosteroids >= 90 days in the 12 months before
STEROID_LOOKBACK_DAYS = 365
OLDER_AGE_YEARS = 50  # ACP 2007 Table 1: age > 50 (cancer risk)
ELDERLY_AGE_YEARS = 70  # AHCPR / J Gen Intern Med 2016 Table 1: age > 70 (fracture risk)

# Physiologically plausible ranges: readings outside are data errors (e.g. 384 for 38.4), not findings.
PLAUSIBLE_CELSIUS = (Decimal(25), Decimal(45))
PLAUSIBLE_KILOGRAMS = (Decimal("0.3"), Decimal(650))

_ISSUE = "lbp-imaging-cds issue 3 red-flag table"
_C, _O, _M, _P, _PT = (
    InputKind.CONDITIONS,
    InputKind.OBSERVATIONS,
    InputKind.MEDICATIONS,
    InputKind.PROCEDURES,
    InputKind.PATIENT,
)

RED_FLAGS: Mapping[str, RedFlagDefinition] = {
    flag.id: flag
    for flag in (
        RedFlagDefinition(
            "cauda-equina",
            "cauda equina syndrome (new urinary retention or incontinence, fecal incontinence)",
            (_C,),
            (
                ConditionCriterion("cauda-equina-syndrome", Timing.ACTIVE),
                ConditionCriterion("bladder-bowel-dysfunction", Timing.WITHIN, 30),
            ),
            f"{_ISSUE}; ACP 2011 (cauda equina signs: new urinary retention, fecal incontinence)",
        ),
        RedFlagDefinition(
            "severe-neurologic-deficit",
            "severe neurologic deficit (foot drop, paraparesis, lower-limb monoplegia)",
            (_C,),
            (ConditionCriterion("severe-neurologic-deficit", Timing.ACTIVE_WITHIN, 30),),
            f"{_ISSUE}; ACP 2011 (severe or progressive neurologic deficit)",
        ),
        RedFlagDefinition(
            "cancer-history",
            "history of cancer",
            (_C,),
            (ConditionCriterion("malignancy", Timing.EVER),),
            f"{_ISSUE}; ACP 2007 Table 1; CMS166v7 (cancer at any time)",
        ),
        RedFlagDefinition(
            "unexplained-weight-loss",
            "unexplained weight loss",
            (_C, _O),
            (ConditionCriterion("weight-loss", Timing.ACTIVE_WITHIN, WEIGHT_LOSS_WINDOW_DAYS),),
            f"{_ISSUE}; ACP 2007 Table 1 (unexplained weight loss)",
        ),
        RedFlagDefinition(
            "age-over-50",
            "age over 50",
            (_PT,),
            (),
            "ACP 2007 Table 1 (age > 50, cancer risk)",
        ),
        RedFlagDefinition(
            "fever",
            "fever",
            (_C, _O),
            (ConditionCriterion("fever", Timing.ACTIVE_WITHIN, FEVER_WINDOW_DAYS),),
            f"{_ISSUE}; ACP 2011 (spinal infection risk: fever)",
        ),
        RedFlagDefinition(
            "iv-drug-use",
            "intravenous drug use",
            (_C,),
            (ConditionCriterion("iv-drug-use", Timing.ACTIVE_OR_WITHIN, 365),),
            f"{_ISSUE}; CMS166v7 (IV drug abuse within 12 months); ACP 2011",
        ),
        RedFlagDefinition(
            "immunosuppression",
            "immunosuppression (HIV, transplant, immunodeficiency, immunosuppressant therapy)",
            (_C,),
            (ConditionCriterion("immunosuppression", Timing.ACTIVE),),
            f"{_ISSUE}; ACR 2021 variant 7; CMS166v7 (HIV, organ transplant)",
        ),
        RedFlagDefinition(
            "spinal-infection",
            "spinal infection",
            (_C,),
            (ConditionCriterion("spinal-infection", Timing.ACTIVE),),
            f"{_ISSUE}; CMS166v7 (spinal infection)",
        ),
        RedFlagDefinition(
            "prolonged-corticosteroids",
            "prolonged systemic corticosteroid use",
            (_C, _M),
            (ConditionCriterion("long-term-steroid-use", Timing.ACTIVE),),
            f"{_ISSUE}; CMS166v7 (corticosteroids >= 90 days in 12 months); ACR 2021 variant 6",
        ),
        RedFlagDefinition(
            "osteoporosis",
            "osteoporosis",
            (_C, _M),
            (ConditionCriterion("osteoporosis", Timing.EVER),),
            f"{_ISSUE}; ACR 2021 variant 6; ACP 2011 (compression fracture risk)",
        ),
        RedFlagDefinition(
            "recent-trauma",
            "recent trauma (spine injury, fall or transport accident)",
            (_C,),
            (ConditionCriterion("spine-injury-or-fall", Timing.WITHIN, 90),),
            f"{_ISSUE}; CMS166v7 (trauma within 90 days); ACR 2021 variant 6",
        ),
        RedFlagDefinition(
            "age-over-70",
            "age over 70",
            (_PT,),
            (),
            "AHCPR 1994 / J Gen Intern Med 2016 Table 1 (age > 70, fracture risk); ACR 2021 variant 6",
        ),
        RedFlagDefinition(
            "prior-lumbar-surgery",
            "prior lumbar surgery",
            (_C, _P),
            (ConditionCriterion("prior-lumbar-surgery", Timing.EVER),),
            f"{_ISSUE}; ACR 2021 variant 5",
        ),
    )
}

# Value sets read outside the Condition table.
LOW_BACK_PAIN = "low-back-pain"
BODY_TEMPERATURE = "body-temperature"
BODY_WEIGHT = "body-weight"
SYSTEMIC_CORTICOSTEROIDS = "systemic-corticosteroids"
OSTEOPOROSIS_DRUGS = "osteoporosis-drugs"
LUMBAR_SURGERY = "prior-lumbar-surgery"
PHYSICAL_THERAPY = "physical-therapy"


def check_criteria() -> None:
    """Fails fast (at start-up) when the table and the value sets disagree; names what is wrong."""
    if tuple(RED_FLAGS) != RED_FLAG_IDS:
        raise ValueSetError(f"red-flag table ids {tuple(RED_FLAGS)} differ from RED_FLAG_IDS")
    available = load_value_sets()
    used = {criterion.value_set for flag in RED_FLAGS.values() for criterion in flag.conditions}
    used |= {LOW_BACK_PAIN, BODY_TEMPERATURE, BODY_WEIGHT, SYSTEMIC_CORTICOSTEROIDS, OSTEOPOROSIS_DRUGS}
    used |= {LUMBAR_SURGERY, PHYSICAL_THERAPY}
    missing = sorted(used - set(available))
    if missing:
        raise ValueSetError(f"value sets named by the red-flag criteria are missing: {', '.join(missing)}")


@cache
def condition_value_sets() -> tuple[str, ...]:
    """Every value set a Condition is read against: the red-flag criteria and the low back pain episode.

    Cached: it names the code index read for every Condition (the table is constant)."""
    ids = [criterion.value_set for flag in RED_FLAGS.values() for criterion in flag.conditions]
    return (LOW_BACK_PAIN, *dict.fromkeys(ids))


@cache
def flags_by_value_set() -> Mapping[str, tuple[str, ...]]:
    """Condition value set id -> the red flags it can show (built once: read for every order reason)."""
    result: dict[str, list[str]] = {}
    for flag in RED_FLAGS.values():
        for criterion in flag.conditions:
            result.setdefault(criterion.value_set, []).append(flag.id)
    return MappingProxyType({vs_id: tuple(flags) for vs_id, flags in result.items()})
