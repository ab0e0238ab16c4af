"""The record -> `Findings`: every red flag present, absent or unknown, with evidence and data gaps."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

from fhir_mappings.collect import Collector, evidence_for
from fhir_mappings.conditions import condition_findings, episode_from
from fhir_mappings.criteria import ELDERLY_AGE_YEARS, OLDER_AGE_YEARS, RED_FLAGS
from fhir_mappings.fhirdates import DateSpan, completed_years, parse_fhir_date
from fhir_mappings.fhirjson import Resource, as_text, resource_id
from fhir_mappings.medications import medication_findings
from fhir_mappings.model import (
    RED_FLAG_IDS,
    DataGap,
    Episode,
    Findings,
    FlagStatus,
    GapKind,
    ImagingOrder,
    InputKind,
    PatientRecord,
    RedFlag,
    input_gap_id,
)
from fhir_mappings.orders import reason_findings
from fhir_mappings.procedures import surgery_findings, therapy_findings
from fhir_mappings.vitals import observation_findings

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ADMINISTRATIVE_GENDERS = frozenset({"male", "female", "other", "unknown"})  # FHIR R4 AdministrativeGender

AGE_FLAGS = {"age-over-50": OLDER_AGE_YEARS, "age-over-70": ELDERLY_AGE_YEARS}
_KIND_ORDER = tuple(InputKind)

# Findings other than red flags that an input feeds.
_ALSO_AFFECTS: Mapping[InputKind, tuple[str, ...]] = {
    InputKind.PATIENT: ("age",),
    InputKind.CONDITIONS: ("episode", "therapy"),
    InputKind.PROCEDURES: ("therapy",),
    InputKind.SERVICE_REQUESTS: ("therapy",),
}


def _is_complete(record: PatientRecord, kind: InputKind) -> bool:
    if kind is InputKind.PATIENT:
        return record.patient is not None
    supplied = {
        InputKind.CONDITIONS: record.conditions,
        InputKind.OBSERVATIONS: record.observations,
        InputKind.MEDICATIONS: record.medications,
        InputKind.PROCEDURES: record.procedures,
        InputKind.SERVICE_REQUESTS: record.service_requests,
    }[kind]
    return supplied is not None and kind not in record.incomplete


def _affected_by(kind: InputKind) -> tuple[str, ...]:
    return tuple(flag.id for flag in RED_FLAGS.values() if kind in flag.inputs) + _ALSO_AFFECTS.get(kind, ())


# Findings other than red flags that a record problem can leave unchecked, in the order gaps list them.
_OTHER_FINDINGS = ("age", "episode", "therapy")


class _PatientFacts:
    """Age and sex from the Patient, with the gaps a missing or partial birthDate leaves."""

    _AFFECTS = (*AGE_FLAGS, "age")

    def __init__(self, patient: Resource | None, collector: Collector) -> None:
        self.patient = patient
        self.sex: str | None = None
        self.birth: DateSpan | None = None
        self.age_range: tuple[int, int] | None = None  # youngest and oldest the patient can be
        self.gaps: list[DataGap] = []
        if patient is None or not collector.usable(patient, InputKind.PATIENT, self._AFFECTS):
            return
        gender = as_text(patient.get("gender"))
        self.sex = gender if gender in _ADMINISTRATIVE_GENDERS else None
        self.birth = parse_fhir_date(patient.get("birthDate"))
        if self.birth is None:
            self.gaps.append(DataGap("birthdate-missing", GapKind.BIRTH_DATE_MISSING, self._AFFECTS))
            return
        as_of = collector.as_of
        if self.birth.earliest > as_of:
            self.gaps.append(
                DataGap(
                    "birthdate-after-assessment-date",
                    GapKind.BIRTH_DATE_AFTER_ASSESSMENT,
                    self._AFFECTS,
                    birth_date=self.birth.text,
                )
            )
            return
        youngest, oldest = (
            max(0, completed_years(self.birth.latest, as_of)),
            completed_years(self.birth.earliest, as_of),
        )
        self.age_range = (youngest, oldest)
        if youngest != oldest:
            self.gaps.append(
                DataGap(
                    "birthdate-partial",
                    GapKind.BIRTH_DATE_PARTIAL,
                    self._AFFECTS,
                    birth_date=self.birth.text,
                    ages=(youngest, oldest),
                )
            )

    @property
    def reference(self) -> str | None:
        identifier = resource_id(self.patient)
        # Only a FHIR id makes a reference (no spaces or control characters reach the answer or the hash).
        return f"Patient/{identifier}" if identifier and _FHIR_ID.fullmatch(identifier) else None

    @property
    def age_years(self) -> int | None:
        """Completed years, certain: the youngest the patient can be."""
        return None if self.age_range is None else self.age_range[0]

    def flag(self, flag_id: str, threshold: int) -> RedFlag:
        if self.patient is None or self.age_range is None:
            return RedFlag(flag_id, FlagStatus.UNKNOWN, unchecked=(InputKind.PATIENT,))
        youngest, oldest = self.age_range
        if youngest > threshold:
            evidence = evidence_for(self.patient, None, self.birth, f"age {youngest} years")
            return RedFlag(flag_id, FlagStatus.PRESENT, (evidence,))
        if oldest <= threshold:
            return RedFlag(flag_id, FlagStatus.ABSENT)
        return RedFlag(flag_id, FlagStatus.UNKNOWN, unchecked=(InputKind.PATIENT,))


def _resolver(record: PatientRecord) -> dict[str, Resource]:
    return {
        f"Condition/{identifier}": condition
        for condition in record.conditions or ()
        if (identifier := resource_id(condition)) is not None
    }


def _order_reasons(
    orders: Sequence[ImagingOrder], record: PatientRecord, collector: Collector
) -> tuple[ImagingOrder, ...]:
    """Resolves each order's reasons against the record; a red flag named there is present."""
    conditions: dict[str, Resource] | None = None  # built on the first reasonReference, most orders have none

    def resolve(key: str) -> Resource | None:
        nonlocal conditions
        if conditions is None:
            conditions = _resolver(record)
        condition = conditions.get(key)
        return condition if condition is not None and collector.validator.is_valid(condition) else None

    resolved: list[ImagingOrder] = []
    for order in orders:
        reasons = reason_findings(order.resource, resolve)
        authored = parse_fhir_date(order.resource.get("authoredOn"))
        for reason in reasons:
            for flag in reason.red_flags:
                detail = "named as the reason for this order" + (
                    "" if reason.via == "reasonCode" else f" ({reason.via})"
                )
                evidence = replace(
                    evidence_for(order.resource, reason.coding, authored, detail), reference=order.reference
                )
                collector.add(flag, evidence)
        resolved.append(
            replace(
                order,
                reason_names_low_back_pain=order.reason_names_low_back_pain
                or any(reason.names_low_back_pain for reason in reasons),
                reason_red_flags=tuple(
                    sorted(
                        set(order.reason_red_flags)
                        | {flag for reason in reasons for flag in reason.red_flags}
                    )
                ),
            )
        )
    return tuple(resolved)


def _flag_status(flag_id: str, record: PatientRecord, collector: Collector) -> RedFlag:
    evidence = collector.evidence.get(flag_id)
    if evidence:
        return RedFlag(flag_id, FlagStatus.PRESENT, tuple(evidence))
    missing = {kind for kind in RED_FLAGS[flag_id].inputs if not _is_complete(record, kind)}
    missing |= collector.unresolved_kinds.get(flag_id, set())
    if missing:
        return RedFlag(flag_id, FlagStatus.UNKNOWN, unchecked=tuple(k for k in _KIND_ORDER if k in missing))
    return RedFlag(flag_id, FlagStatus.ABSENT)


def _input_gaps(record: PatientRecord) -> list[DataGap]:
    gaps: list[DataGap] = []
    for kind in _KIND_ORDER:
        if _is_complete(record, kind):
            continue
        gap = (
            GapKind.INCOMPLETE
            if kind in record.incomplete and kind is not InputKind.PATIENT
            else GapKind.NOT_SUPPLIED
        )
        gaps.append(DataGap(input_gap_id(kind, gap), gap, _affected_by(kind), input=kind))
    return gaps


def _problem_gaps(collector: Collector) -> list[DataGap]:
    gaps: list[DataGap] = []
    for problem, entry in sorted(collector.unresolved.items()):
        affects = tuple(flag for flag in RED_FLAG_IDS if flag in entry.flags)
        affects += tuple(finding for finding in _OTHER_FINDINGS if finding in entry.flags)
        gaps.append(
            DataGap(
                f"records-{problem.value}",
                GapKind.RECORDS_SKIPPED,
                affects,
                problem=problem.value,
                count=len(entry.resources),
            )
        )
    return gaps


def _episode_gaps(record: PatientRecord, episode: Episode) -> list[DataGap]:
    if record.conditions is None:
        return []  # already said: Conditions not supplied
    if not episode.active:
        return [DataGap("no-active-low-back-pain", GapKind.NO_ACTIVE_LOW_BACK_PAIN, ("episode", "therapy"))]
    if episode.onset is None:
        return [DataGap("episode-onset-unknown", GapKind.EPISODE_ONSET_UNKNOWN, ("episode",))]
    return []


def findings(record: PatientRecord, orders: Sequence[ImagingOrder], as_of: date) -> Findings:
    """Every red flag in RED_FLAG_IDS with its status and evidence, the episode, therapy and data gaps.

    Data-quality notes here are the resources skipped while reading; `build_record` and
    `record_from_bundle` return their own notes (on the envelope of the parts) for the caller to add.
    """
    collector = Collector(as_of)
    patient = _PatientFacts(record.patient, collector)
    low_back_pain = condition_findings(record.conditions or (), collector)
    observation_findings(record.observations or (), collector)
    medication_findings(record.medications or (), collector)
    surgery_findings(record.procedures or (), collector)
    episode = episode_from(low_back_pain, as_of)
    therapy_records = [(InputKind.PROCEDURES, r) for r in record.procedures or ()] + [
        (InputKind.SERVICE_REQUESTS, r) for r in record.service_requests or ()
    ]
    therapy = therapy_findings(therapy_records, episode, collector)
    resolved_orders = _order_reasons(orders, record, collector)
    red_flags = {
        flag_id: patient.flag(flag_id, AGE_FLAGS[flag_id])
        if flag_id in AGE_FLAGS
        else _flag_status(flag_id, record, collector)
        for flag_id in RED_FLAG_IDS
    }
    gaps = _input_gaps(record) + patient.gaps + _problem_gaps(collector) + _episode_gaps(record, episode)
    return Findings(
        as_of=as_of,
        patient_reference=patient.reference,
        age_years=patient.age_years,
        sex=patient.sex,
        episode=episode,
        therapy=therapy,
        red_flags=red_flags,
        orders=resolved_orders,
        data_gaps=tuple(gaps),
        data_quality=tuple(collector.validator.notes),
    )
