"""A ~200-resource record maps in a few milliseconds (validate only what feeds a finding)."""

from __future__ import annotations

import time
from typing import Any

from fhir_mappings import build_record, findings, imaging_orders
from fhir_mappings.model import FlagStatus, InputKind
from tests.support.fhir_records import (
    AS_OF,
    SNOMED,
    bundle,
    condition,
    drug,
    medication_request,
    medication_statement,
    patient,
    procedure,
    service_request,
    temperature,
    weight,
)

RUNS = 30
BUDGET_MS = 10.0  # about 3x the typical 2.5-3.5 ms: room for a loaded 2-core CI box


def _synthetic_parts() -> dict[InputKind, list[Any]]:
    """A year of a busy patient's record: 200 resources, most of them read by no red flag."""
    everyday = ["I10", "E11.9", "E78.5", "J45.909", "K21.9", "F41.1", "G47.00", "M17.11", "N18.3", "H52.4"]
    conditions = [condition(everyday[i % 10], onset=30 * (i + 1)) for i in range(50)]
    conditions += [
        condition("M54.50", onset=50),
        condition("M54.50", onset=800, clinical="resolved"),
        condition("278860009", SNOMED, onset=400, clinical="resolved"),
        condition("Z85.3", onset="2012"),
        condition("C50.911", verification="refuted"),
        condition("R33.9", onset=200),
        condition("M81.0"),
        condition("S32.010A", onset=300),
        condition("F17.210"),
        condition("Z79.899"),
    ]
    observations = [temperature(36.5 + (i % 10) / 10, when=i * 4) for i in range(45)]
    observations += [weight(80 - (i % 3), when=i * 8) for i in range(45)]
    medications = [
        medication_request(drug(f"lisinopril {i} MG"), authored=i * 10, supply_days=30) for i in range(15)
    ]
    medications += [
        medication_statement(drug("prednisone 5 MG Oral Tablet"), start=400 - i * 30, end=390 - i * 30)
        for i in range(5)
    ]
    medications += [medication_request(drug("metformin 500 MG"), authored=i * 20) for i in range(5)]
    procedures = [procedure("99213", performed=i * 20) for i in range(10)] + [
        procedure("97110", performed=20)
    ]
    referrals = [service_request("85025", authored=i * 15) for i in range(13)]
    resources = conditions + observations + medications + procedures + referrals
    assert len(resources) + 1 == 200, len(resources)
    return {
        InputKind.PATIENT: [patient("1968-04-12")],
        InputKind.CONDITIONS: [bundle(*conditions)],
        InputKind.OBSERVATIONS: [bundle(*observations)],
        InputKind.MEDICATIONS: [bundle(*medications)],
        InputKind.PROCEDURES: [bundle(*procedures)],
        InputKind.SERVICE_REQUESTS: [bundle(*referrals)],
    }


def test_two_hundred_resources_map_in_a_few_milliseconds() -> None:
    parts = _synthetic_parts()
    draft = bundle(
        service_request("72148", id="mri", reason_codes=[("M54.50", "http://hl7.org/fhir/sid/icd-10-cm")])
    )

    def run() -> Any:
        record, _ = build_record(parts)
        return findings(record, imaging_orders(draft), AS_OF)

    result = run()  # warm-up: value sets and R4B models load once per process
    assert result.red_flags["cancer-history"].status is FlagStatus.PRESENT
    assert result.red_flags["osteoporosis"].status is FlagStatus.PRESENT
    assert result.red_flags["fever"].status is FlagStatus.ABSENT
    assert result.therapy.documented
    assert result.episode.symptom_days == 50
    # CPU time of this process: other work on a shared box does not count against the mapping.
    timings = []
    for _ in range(RUNS):
        started = time.process_time()
        run()
        timings.append((time.process_time() - started) * 1000)
    average_ms = sum(timings) / RUNS
    best_ms = min(timings)
    print(f"\n200-resource record: {average_ms:.2f} ms CPU per mapping (mean of {RUNS}, best {best_ms:.2f})")
    assert average_ms < BUDGET_MS
