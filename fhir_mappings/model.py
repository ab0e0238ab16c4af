"""What the mappings hand to the rules: findings about one patient, each with the evidence behind it.

These types are the contract between `fhir_mappings` (which builds them from FHIR JSON) and the rules
engine in `service` (which only reads them). They speak in clinical concepts (`cancer-history`), never in
codes; the codes stay in the value sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

# The registry (ids read from fhir_mappings/knowledge/red-flag-criteria.yaml), re-exported: the contract
# between mappings and rules names red flags and procedures by these ids.
from fhir_mappings.registry import MODALITIES as MODALITIES
from fhir_mappings.registry import PROCEDURE_IDS as PROCEDURE_IDS
from fhir_mappings.registry import RED_FLAG_IDS as RED_FLAG_IDS
from fhir_mappings.registry import Modality as Modality


class FlagStatus(StrEnum):
    """A red flag is present, absent, or could not be checked: unknown never reads as absent."""

    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


class InputKind(StrEnum):
    """The parts of a patient's record the mappings read; each may be supplied or not."""

    PATIENT = "patient"
    CONDITIONS = "conditions"
    OBSERVATIONS = "observations"
    MEDICATIONS = "medications"
    PROCEDURES = "procedures"
    SERVICE_REQUESTS = "serviceRequests"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact from the record that a clinician can check: which resource, which code, which date."""

    reference: str  # "Condition/abc", or "ServiceRequest/x" for an order's reason
    code: str | None = None
    system: str | None = None
    display: str | None = None
    date: str | None = None  # as written in the record (partial dates allowed)
    # e.g. "38.4 °C", "82 kg -> 76 kg (-7.3%) in 88 days, cause not recorded", "120 days of the last 365"
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class RedFlag:
    id: str  # one of RED_FLAG_IDS
    status: FlagStatus
    evidence: tuple[Evidence, ...] = ()
    # Inputs that were not supplied and could have shown this flag; set when status is UNKNOWN.
    unchecked: tuple[InputKind, ...] = ()


@dataclass(frozen=True, slots=True)
class Episode:
    """The current low back pain episode, from active Conditions in the low-back-pain value set."""

    active: bool
    onset: date | None = None
    symptom_days: int | None = None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class ConservativeTherapy:
    """Physical therapy or spinal manipulation documented on or after the episode's onset."""

    documented: bool
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderCoding:
    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class ImagingOrder:
    """A draft ServiceRequest recognised as lumbar-spine imaging."""

    reference: str  # "ServiceRequest/<id>"
    resource_id: str | None
    modality: Modality
    procedure: str  # procedure id, e.g. "mri-lumbar-without-contrast"
    coding: OrderCoding  # the coding that identified the procedure
    # The order's reasonCode / reasonReference (resolved against the record by `findings`).
    reason_names_low_back_pain: bool = False
    reason_red_flags: tuple[str, ...] = ()
    # The ServiceRequest as the client sent it, for system actions that annotate it unchanged.
    resource: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


class GapKind(StrEnum):
    """Why some findings could not be checked; service/wording says it in a clinician's words."""

    NOT_SUPPLIED = "not-supplied"  # `input` was not supplied
    INCOMPLETE = "incomplete"  # `input` was only partly supplied (a page failed or was not fetched)
    PARTLY_READ = "partly-read"  # `input` was read in part, yet complete enough (`why` says what failed)
    RECORDS_SKIPPED = "records-skipped"  # `count` resources with `problem` were not used
    BIRTH_DATE_MISSING = "birthdate-missing"
    BIRTH_DATE_AFTER_ASSESSMENT = "birthdate-after-assessment-date"  # `birth_date`
    BIRTH_DATE_PARTIAL = "birthdate-partial"  # `birth_date`, `ages` (youngest, oldest)
    NO_ACTIVE_LOW_BACK_PAIN = "no-active-low-back-pain"
    EPISODE_ONSET_UNKNOWN = "episode-onset-unknown"


def input_gap_id(kind: InputKind, gap: GapKind) -> str:
    """ "observations-not-supplied", "service-requests-incomplete": a stable id for an input's gap."""
    return f"{kind.name.lower().replace('_', '-')}-{gap.value}"


@dataclass(frozen=True, slots=True)
class DataGap:
    """Something missing from the record, so some findings could not be checked: as codes and facts."""

    id: str  # e.g. "observations-not-supplied", "records-unreadable", "birthdate-missing"
    kind: GapKind
    affects: tuple[str, ...] = ()  # red-flag ids, "episode", "therapy", "age"
    input: InputKind | None = None  # the part of the record (NOT_SUPPLIED, INCOMPLETE, PARTLY_READ)
    problem: str | None = None  # RECORDS_SKIPPED: the problem's code (unreadable, undated, unit...)
    count: int = 0  # RECORDS_SKIPPED: how many resources
    birth_date: str | None = None  # BIRTH_DATE_*: as written in the record
    ages: tuple[int, int] | None = None  # BIRTH_DATE_PARTIAL: the youngest and oldest the patient can be
    why: tuple[str, ...] = ()  # why the input is missing or partial (the fetch's reasons), when known
    # Red flags of `affects` the clinician has answered since (a questionnaire): left out of `affects`.
    answered: tuple[str, ...] = ()


class Answer(StrEnum):
    """A clinician's answer to one red-flag question; `unknown` (or no answer) leaves the flag unchecked."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ClinicianAnswer:
    """One answered red-flag question (from a QuestionnaireResponse), evidence of source clinician-reported.

    `reference` names the QuestionnaireResponse, `questionnaire` its canonical, `question` the words asked,
    `authored` when it was answered (as written). A `yes` makes an unrecorded flag present and a `no`
    makes an unchecked one absent; neither ever changes a flag the record shows present.
    """

    flag: str  # one of RED_FLAG_IDS (the question's linkId)
    answer: Answer
    reference: str
    questionnaire: str
    question: str
    authored: str | None = None


@dataclass(frozen=True, slots=True)
class DataQualityNote:
    """A resource skipped because it failed validation; never a reason to fail the request."""

    resource_type: str
    resource_id: str | None
    problem: str


@dataclass(frozen=True, slots=True)
class Findings:
    as_of: date
    patient_reference: str | None  # "Patient/<id>"
    age_years: int | None
    sex: str | None
    episode: Episode
    therapy: ConservativeTherapy
    red_flags: Mapping[str, RedFlag]  # every id in RED_FLAG_IDS, present, absent or unknown
    orders: tuple[ImagingOrder, ...] = ()
    data_gaps: tuple[DataGap, ...] = ()
    data_quality: tuple[DataQualityNote, ...] = ()

    def is_present(self, flag_id: str) -> bool:
        flag = self.red_flags.get(flag_id)
        return flag is not None and flag.status is FlagStatus.PRESENT


@dataclass(slots=True)
class PatientRecord:
    """Raw FHIR JSON grouped by what it is for. `None` means not supplied; `[]` means supplied, none."""

    patient: Mapping[str, Any] | None = None
    conditions: list[Mapping[str, Any]] | None = None
    observations: list[Mapping[str, Any]] | None = None
    # MedicationRequest and MedicationStatement, plus any Medication they reference (`_include`d).
    medications: list[Mapping[str, Any]] | None = None
    procedures: list[Mapping[str, Any]] | None = None
    service_requests: list[Mapping[str, Any]] | None = None  # therapy referrals already in the record
    # Kinds supplied only in part (a page failed or was not fetched): what is there counts as evidence,
    # but the absence of a finding in them proves nothing.
    incomplete: set[InputKind] = field(default_factory=set)
