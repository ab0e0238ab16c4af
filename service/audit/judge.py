"""One patient's resources -> each lumbar imaging order judged as of its own date, by the hook's route.

For each date on which the patient had lumbar imaging ordered (a ServiceRequest) or done without an order
in the export (an ImagingStudy not `basedOn` one of them), the record is cut to what it held on that date
(each resource's own date: a Condition's recordedDate, else its onset; an Observation's effective time;
a MedicationRequest's authoredOn...; a resource with no date is kept, since nothing says it came later)
and built with `fhir_mappings.build_record`, the orders with `fhir_mappings.imaging_orders`, and judged
by `service.usecases.decide.decide`: the same mappings, rules and decision as a hook call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings import build_record, imaging_orders
from fhir_mappings.fhirdates import parse_fhir_date
from fhir_mappings.fhirjson import child, codings, reference_key, status_of
from fhir_mappings.inputs import KIND_OF_TYPE
from fhir_mappings.model import Evidence, ImagingOrder, InputKind
from fhir_mappings.orders import lumbar_imaging_coding
from fhir_mappings.terminology import code_index
from service.audit.reader import Issue, Line
from service.rules import Decision, OrderJudgement, Rules
from service.usecases.decide import decide

# Orders that were never real: not judged (counted in the summary).
NOT_AN_ORDER = frozenset({"entered-in-error", "revoked", "draft"})
# Where each type says when it entered the record, in order of preference.
DATE_FIELDS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("recordedDate",), ("onsetDateTime",), ("onsetPeriod", "start")),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("effectiveInstant",), ("issued",)),
    "MedicationRequest": (("authoredOn",), ("dispenseRequest", "validityPeriod", "start")),
    "MedicationStatement": (("dateAsserted",), ("effectiveDateTime",), ("effectivePeriod", "start")),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "ServiceRequest": (("authoredOn",), ("occurrenceDateTime",), ("occurrencePeriod", "start")),
    "ImagingStudy": (("started",),),
    "Encounter": (("period", "start"),),
}


def field_text(resource: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    value: Any = resource
    for name in path:
        value = child(value, name)
    return value if isinstance(value, str) else None


def resource_date(resource: Mapping[str, Any], kind: str) -> str | None:
    """The date (as written) the resource entered the record, or None when it has none."""
    for path in DATE_FIELDS.get(kind, ()):
        text = field_text(resource, path)
        if text is not None and parse_fhir_date(text) is not None:
            return text
    return None


def calendar_day(text: str) -> date | None:
    """The day a FHIR date-time names as written (its own local day); a partial date: its last day."""
    if len(text) >= 10:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    span = parse_fhir_date(text)
    return None if span is None else span.latest


def is_lumbar_study(resource: Mapping[str, Any]) -> bool:
    return any(lumbar_imaging_coding({"code": code}) for code in _as_list(resource.get("procedureCode")))


def names_low_back_pain(resource: Mapping[str, Any]) -> bool:
    index = code_index("low-back-pain")
    return any(index.matching(system, code) for system, code, _ in codings(resource.get("code")))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class Context:
    """What every patient's judging needs: the rules, which parts the export holds, how to name a patient."""

    rules: Rules
    supplied: frozenset[InputKind]
    incomplete: frozenset[InputKind]  # a file of the kind was damaged or had unusable lines
    patient_label: Callable[[str], str]  # "Patient/<id>" -> its keyed hash (or the reference itself)
    start: date | None = None
    end: date | None = None


@dataclass(slots=True)
class Judged:
    rows: list[dict[str, Any]]
    issues: list[Issue]
    outside_window: int = 0
    not_orders: int = 0
    linked_studies: int = 0


@dataclass(frozen=True, slots=True)
class _Candidate:
    order: ImagingOrder
    day: date
    written: str
    orderer: str | None
    kind: str  # ServiceRequest | ImagingStudy


def _study_order(study: Mapping[str, Any]) -> ImagingOrder | None:
    """An ImagingStudy read as the order it stands for, through the same `imaging_orders`."""
    for code in _as_list(study.get("procedureCode")):
        as_request = {
            "resourceType": "ServiceRequest",
            "id": study.get("id"),
            "code": code,
            "reasonCode": study.get("reasonCode"),
            "reasonReference": study.get("reasonReference"),
            "authoredOn": study.get("started"),
        }
        found = imaging_orders([as_request])
        if found:
            return dataclasses.replace(found[0], reference=f"ImagingStudy/{study.get('id')}", resource=study)
    return None


def _candidates(lines: Sequence[Line], issues: list[Issue], result: Judged) -> list[_Candidate]:
    requests = [line for line in lines if line.kind == "ServiceRequest"]
    lumbar: dict[str, tuple[Line, ImagingOrder]] = {}
    for line in requests:
        found = imaging_orders([line.resource])
        if found:
            lumbar[found[0].reference] = (line, found[0])
    candidates: list[_Candidate] = []
    for reference, (line, order) in sorted(lumbar.items()):
        if status_of(line.resource) in NOT_AN_ORDER:
            result.not_orders += 1
            continue
        written = resource_date(line.resource, "ServiceRequest")
        day = calendar_day(written) if written else None
        if written is None or day is None:
            issues.append(Issue("", 0, f"{reference}: lumbar imaging order with no date; not judged"))
            continue
        orderer = reference_key(line.resource.get("requester"))
        candidates.append(_Candidate(order, day, written, orderer, "ServiceRequest"))
    for line in lines:
        if line.kind != "ImagingStudy" or not is_lumbar_study(line.resource):
            continue
        based_on = {reference_key(item) for item in _as_list(line.resource.get("basedOn"))}
        if based_on & set(lumbar):
            result.linked_studies += 1  # the order it was done for is judged instead
            continue
        study = _study_order(line.resource)
        written = resource_date(line.resource, "ImagingStudy")
        day = calendar_day(written) if written else None
        if study is None:
            continue
        if written is None or day is None:
            issues.append(Issue("", 0, f"{study.reference}: lumbar imaging study with no date; not judged"))
            continue
        orderer = reference_key(line.resource.get("referrer"))
        candidates.append(_Candidate(study, day, written, orderer, "ImagingStudy"))
    return candidates


_PART_FAILED = {"resourceType": "OperationOutcome"}  # `build_record`'s sign of a part read only in part


def _record_parts(
    lines: Iterable[Line], as_of: date, context: Context, orders: set[str], partial: frozenset[InputKind]
) -> dict[InputKind, list[Any]]:
    """The patient's resources that the record held on `as_of`, per input kind (no lumbar orders).

    A kind whose files had unusable lines is marked incomplete: nothing says whose lines they were, so
    the absence of a finding in it proves nothing (the findings then say what could not be checked)."""
    supplied = context.supplied
    parts: dict[InputKind, list[Any]] = {kind: [] for kind in supplied}
    for line in lines:
        kind = KIND_OF_TYPE.get(line.kind)
        if kind is None or kind not in supplied:
            continue
        if line.kind == "ServiceRequest" and f"ServiceRequest/{line.resource.get('id')}" in orders:
            continue  # lumbar imaging orders are judged, not read as history (as `/evaluate` does)
        written = resource_date(line.resource, line.kind)
        if written is not None:
            span = parse_fhir_date(written)
            if span is not None and span.earliest > as_of:
                continue  # entered the record after this date
        parts[kind].append(line.resource)
    return {
        kind: [*(values or [None]), *([_PART_FAILED] if kind in context.incomplete | partial else [])]
        for kind, values in parts.items()
    }


def _evidence(item: Evidence, patient_reference: str, patient: str) -> dict[str, str]:
    """Evidence as the report shows it; the patient's own resource (age) by the patient's label and
    without the birth date, which identifies a patient as much as the id does."""
    if item.reference == patient_reference:
        return {"reference": patient, **({"detail": item.detail} if item.detail else {})}
    fields = {
        "reference": item.reference,
        "system": item.system,
        "code": item.code,
        "date": item.date,
        "detail": item.detail,
    }
    return {key: value for key, value in fields.items() if value}


def order_row(
    decision: Decision, judgement: OrderJudgement, candidate: _Candidate, patient: str, patient_reference: str
) -> dict[str, Any]:
    order = judgement.order
    withheld = judgement.rating_withheld
    return {
        "order": order.reference,
        "source": candidate.kind,
        "date": candidate.day.isoformat(),
        "patient": patient,
        "orderer": candidate.orderer,
        "modality": order.modality,
        "procedure": order.procedure,
        "code": f"{order.coding.system}|{order.coding.code}",
        "applicability": judgement.applicability.value,
        "appropriateness": judgement.appropriateness.value,
        "pamaRating": None if withheld is not None else judgement.pama_rating.value,
        "pamaRatingWithheld": None if withheld is None else withheld.value,
        "ifUncheckedPresent": None
        if judgement.if_unchecked_present is None
        else judgement.if_unchecked_present.value,
        "variants": [match.id for match in decision.variants],
        "possibleVariants": [possible.id for possible in decision.possible_variants],
        "redFlags": [
            {
                "id": flag.id,
                "evidence": [_evidence(item, patient_reference, patient) for item in flag.evidence],
            }
            for flag in decision.red_flags
        ],
        "uncheckedRedFlags": [flag.id for flag in decision.unchecked_flags],
        "dataGaps": [gap.id for gap in decision.findings.data_gaps],
        "urgent": decision.urgent,
        "alternative": None if judgement.alternative is None else judgement.alternative.rating.procedure.id,
        "rulesVersion": decision.rules_version,
    }


def judge_patient(
    patient_id: str, lines: Sequence[Line], context: Context, partial: frozenset[InputKind] = frozenset()
) -> Judged:
    """Every lumbar imaging order of one patient, judged as of its own date. `partial`: kinds of this
    patient's record that lost a line (malformed, but naming the patient)."""
    result = Judged(rows=[], issues=[])
    candidates = _candidates(lines, result.issues, result)
    in_window = []
    for candidate in candidates:
        if (context.start and candidate.day < context.start) or (context.end and candidate.day > context.end):
            result.outside_window += 1
        else:
            in_window.append(candidate)
    if not in_window:
        return result
    reference = f"Patient/{patient_id}"
    label = context.patient_label(reference)
    lumbar_requests = {c.order.reference for c in candidates if c.kind == "ServiceRequest"}
    by_day: dict[date, list[_Candidate]] = {}
    for candidate in in_window:
        by_day.setdefault(candidate.day, []).append(candidate)
    for day in sorted(by_day):
        same_day = sorted(by_day[day], key=lambda c: c.order.reference)
        record, notes = build_record(_record_parts(lines, day, context, lumbar_requests, partial))
        _, decision = decide(context.rules, record, [c.order for c in same_day], day, quality_notes=notes)
        judgements = {judgement.order.reference: judgement for judgement in decision.orders}
        for candidate in same_day:
            judgement = judgements[candidate.order.reference]
            result.rows.append(order_row(decision, judgement, candidate, label, reference))
    return result
