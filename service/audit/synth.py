"""A synthetic FHIR Bulk Data export, with the answers it was built to have.

Most patients have no back pain: distractor conditions (hypertension, diabetes, neck or knee pain...),
medications, office visits with a series of vital signs, and now and then imaging that is not lumbar
(hip X-ray, cervical MRI). About one in six has low back pain, drawn from clinical scenarios whose
ACR verdict follows from the scenario's design (acute without red flags: imaging usually not
appropriate; history of cancer: MRI usually appropriate; ...). Each scenario states, as intent, the
verdict of each order, the red flags present and the variant that applies, and whether the patient
falls in the CMS166v7 measure's denominator and numerator. The generator never calls the audit, the
mappings or the rules: `known-answers.json` is what the export was built to mean, so a test can check
that the audit reads it back.

Traps on purpose: a fever recorded two days *after* an order (it must not count for that order), a
cancer diagnosed between two orders of one patient (the first judged without it, the second with it),
studies linked to their order (judged once) and studies with no order (judged on their own).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

KNOWN_ANSWERS = "known-answers.json"
RESOURCE_TYPES = (
    "Patient",
    "Practitioner",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "ServiceRequest",
    "ImagingStudy",
)

# (procedure id, coding, DICOM modality)
ORDERS: dict[str, tuple[tuple[str, str, str], str]] = {
    "xr-lumbar": ((CPT, "72100", "X-ray lumbosacral spine, 2 or 3 views"), "DX"),
    "mri-lumbar-without-contrast": ((CPT, "72148", "MRI lumbar spine without contrast"), "MR"),
    "ct-lumbar-without-contrast": ((CPT, "72131", "CT lumbar spine without contrast"), "CT"),
    "mri-lumbar-without-and-with-contrast": (
        (CPT, "72158", "MRI lumbar spine without and with contrast"),
        "MR",
    ),
}
NOT_LUMBAR_IMAGING = (
    ((CPT, "73502", "X-ray hip, unilateral, 2-3 views"), "DX"),
    ((CPT, "72141", "MRI cervical spine without contrast"), "MR"),
    ((CPT, "71046", "X-ray chest, 2 views"), "DX"),
)
LOW_BACK_PAIN_CODES = (
    (ICD10, "M54.50", "Low back pain, unspecified"),
    (ICD10, "M54.59", "Other low back pain"),
    (ICD10, "M54.16", "Radiculopathy, lumbar region"),
    (ICD10, "M54.41", "Lumbago with sciatica, right side"),
    (SNOMED, "279039007", "Low back pain"),
)
DISTRACTORS = (
    (ICD10, "I10", "Essential (primary) hypertension"),
    (ICD10, "E11.9", "Type 2 diabetes mellitus without complications"),
    (ICD10, "E78.5", "Hyperlipidemia, unspecified"),
    (ICD10, "J06.9", "Acute upper respiratory infection, unspecified"),
    (ICD10, "K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    (ICD10, "F41.1", "Generalized anxiety disorder"),
    (ICD10, "M17.11", "Unilateral primary osteoarthritis, right knee"),
    (ICD10, "M54.2", "Cervicalgia"),
    (ICD10, "R51.9", "Headache, unspecified"),
    (SNOMED, "195967001", "Asthma"),
)
DISTRACTOR_DRUGS = (
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("617312", "atorvastatin 10 MG Oral Tablet"),
    ("197806", "ibuprofen 600 MG Oral Tablet"),
)
CANCER = (ICD10, "C50.911", "Malignant neoplasm of unspecified site of right female breast")
CAUDA_EQUINA = (ICD10, "G83.4", "Cauda equina syndrome")
OSTEOPOROSIS = (ICD10, "M81.0", "Age-related osteoporosis without current pathological fracture")
HIV = (ICD10, "B20", "Human immunodeficiency virus [HIV] disease")
LUMBAR_SURGERY = (CPT, "63030", "Laminotomy, one interspace, lumbar")
PHYSICAL_THERAPY = (CPT, "97110", "Therapeutic exercises")
OFFICE_VISIT = (CPT, "99213", "Office or other outpatient visit, established patient")

NOT_APPROPRIATE = "usually-not-appropriate"
APPROPRIATE = "usually-appropriate"
MAYBE = "may-be-appropriate"
NO_CRITERIA = "no-criteria-apply"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A low back pain story: who, when the pain began, what red flag, what was ordered, what it means."""

    name: str
    weight: int
    ages: tuple[int, int]  # age in years at the (first) order
    onset_days: tuple[int, int]  # days from the pain's onset to the (first) order
    verdicts: dict[str, str]  # procedure -> the ACR category the scenario means
    variants: tuple[str, ...]
    red_flags: tuple[str, ...]
    imaged: bool = True
    measure_exclusion: str | None = None  # the CMS166v7 exclusion the scenario carries, if any


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "lbp-no-imaging", 40, (20, 48), (0, 0), {}, (), (), imaged=False
    ),  # the usual course: no imaging at all
    Scenario(
        "acute-no-red-flags",
        16,
        (20, 45),
        (3, 20),
        {
            "xr-lumbar": NOT_APPROPRIATE,
            "mri-lumbar-without-contrast": NOT_APPROPRIATE,
            "ct-lumbar-without-contrast": NOT_APPROPRIATE,
        },
        ("V1",),
        (),
    ),
    Scenario(
        "acute-fever-after-order",
        4,
        (20, 45),
        (3, 20),
        {"mri-lumbar-without-contrast": NOT_APPROPRIATE},
        ("V1",),
        (),
    ),
    Scenario(
        "chronic-no-management",
        8,
        (20, 45),
        (45, 120),
        {"xr-lumbar": NOT_APPROPRIATE, "mri-lumbar-without-contrast": NOT_APPROPRIATE},
        ("V2",),
        (),
    ),
    Scenario(
        "persistent-after-therapy",
        8,
        (20, 45),
        (50, 120),
        {"mri-lumbar-without-contrast": APPROPRIATE, "xr-lumbar": MAYBE},
        ("V3",),
        (),
    ),
    Scenario(
        "cancer-history",
        5,
        (30, 45),
        (3, 20),
        {"mri-lumbar-without-contrast": APPROPRIATE, "xr-lumbar": MAYBE},
        ("V7",),
        ("cancer-history",),
        measure_exclusion="cancer",
    ),
    Scenario(
        "fever",
        4,
        (20, 45),
        (3, 14),
        {"mri-lumbar-without-contrast": APPROPRIATE, "mri-lumbar-without-and-with-contrast": APPROPRIATE},
        ("V7",),
        ("fever",),
    ),
    Scenario(
        "osteoporosis",
        4,
        (55, 68),
        (3, 20),
        {"xr-lumbar": APPROPRIATE, "mri-lumbar-without-contrast": APPROPRIATE},
        ("V6",),
        ("osteoporosis", "age-over-50"),
    ),
    Scenario(
        "cauda-equina",
        2,
        (25, 45),
        (3, 10),
        {"mri-lumbar-without-contrast": APPROPRIATE, "ct-lumbar-without-contrast": MAYBE},
        ("V4",),
        ("cauda-equina",),
        measure_exclusion="neurologic-impairment",
    ),
    Scenario(
        "prior-surgery",
        3,
        (35, 48),
        (3, 20),
        {"mri-lumbar-without-contrast": APPROPRIATE, "ct-lumbar-without-contrast": MAYBE},
        ("V5",),
        ("prior-lumbar-surgery",),
    ),
    Scenario("hiv-no-imaging", 2, (25, 45), (0, 0), {}, (), (), imaged=False, measure_exclusion="hiv"),
    Scenario(
        "cancer-between-orders",
        2,
        (30, 45),
        (5, 15),
        {"mri-lumbar-without-contrast": NOT_APPROPRIATE},
        ("V1",),
        (),
    ),
    Scenario(
        "study-without-order",
        2,
        (30, 45),
        (3, 20),
        {"mri-lumbar-without-contrast": APPROPRIATE},
        ("V7",),
        ("cancer-history",),
        measure_exclusion="cancer",
    ),
)


@dataclass(slots=True)
class _Files:
    """One open NDJSON file per resource type, rotated every `patients_per_file` patients."""

    folder: Path
    compress: bool
    patients_per_file: int
    handles: dict[str, IO[str]] = field(default_factory=dict)
    part: int = -1
    counts: dict[str, int] = field(default_factory=dict)
    issued: int = 0  # resource ids are a running number over the export: they never name the patient

    def rotate(self, patient_index: int) -> None:
        part = patient_index // self.patients_per_file
        if part != self.part:
            self.close()
            self.part = part

    def write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        handle = self.handles.get(kind)
        if handle is None:
            name = f"{kind}.{self.part:03d}.ndjson" + (".gz" if self.compress else "")
            path = self.folder / name
            # Kept open across many patients and closed in `close()`: no `with` block can span that.
            handle = (
                gzip.open(path, "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115
                if self.compress
                else path.open("w", encoding="utf-8")
            )
            self.handles[kind] = handle
        handle.write(json.dumps(resource, separators=(",", ":")) + "\n")
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


def _concept(coding: tuple[str, str, str]) -> dict[str, Any]:
    system, code, display = coding
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _ref(kind: str, identifier: str) -> dict[str, str]:
    return {"reference": f"{kind}/{identifier}"}


def _instant(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def _birth_date(rng: random.Random, age: int, on: date) -> date:
    """A birth date that makes the patient exactly `age` in completed years on `on`."""
    day = 28 if (on.month, on.day) == (2, 29) else on.day
    return date(on.year - age, on.month, day) - timedelta(days=rng.randint(1, 360))


def _years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(slots=True)
class _Patient:
    """Writes one patient's resources; ids are opaque (a running number over the whole export)."""

    pid: str
    files: _Files

    def new_id(self, prefix: str) -> str:
        self.files.issued += 1
        return f"{prefix}-{self.files.issued:x}"

    def condition(
        self, coding: tuple[str, str, str], onset: date, *, active: bool = True, recorded: date | None = None
    ) -> str:
        identifier = self.new_id("cond")
        self.files.write(
            {
                "resourceType": "Condition",
                "id": identifier,
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active" if active else "resolved",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": _concept(coding),
                "subject": _ref("Patient", self.pid),
                "onsetDateTime": onset.isoformat(),
                "recordedDate": (recorded or onset).isoformat(),
            }
        )
        return identifier

    def encounter(self, day: date, practitioner: str) -> None:
        self.files.write(
            {
                "resourceType": "Encounter",
                "id": self.new_id("enc"),
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "type": [_concept(OFFICE_VISIT)],
                "subject": _ref("Patient", self.pid),
                "participant": [{"individual": _ref("Practitioner", practitioner)}],
                "period": {"start": _instant(day, 9), "end": _instant(day, 10)},
            }
        )

    def vital(self, day: date, loinc: str, display: str, value: float, unit: str, code: str) -> None:
        self.files.write(
            {
                "resourceType": "Observation",
                "id": self.new_id("obs"),
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
                "subject": _ref("Patient", self.pid),
                "effectiveDateTime": _instant(day),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code},
            }
        )

    def medication(self, day: date, drug: tuple[str, str]) -> None:
        self.files.write(
            {
                "resourceType": "MedicationRequest",
                "id": self.new_id("medrx"),
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": _concept((RXNORM, *drug)),
                "subject": _ref("Patient", self.pid),
                "authoredOn": _instant(day),
            }
        )

    def procedure(self, coding: tuple[str, str, str], day: date) -> None:
        self.files.write(
            {
                "resourceType": "Procedure",
                "id": self.new_id("proc"),
                "status": "completed",
                "code": _concept(coding),
                "subject": _ref("Patient", self.pid),
                "performedDateTime": _instant(day),
            }
        )

    def order(self, coding: tuple[str, str, str], day: date, practitioner: str, reason: bool) -> str:
        identifier = self.new_id("sr")
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": identifier,
            "status": "completed",
            "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": "363679005", "display": "Imaging"}]}],
            "code": _concept(coding),
            "subject": _ref("Patient", self.pid),
            "authoredOn": _instant(day, 11),
            "requester": _ref("Practitioner", practitioner),
        }
        if reason:
            resource["reasonCode"] = [_concept(LOW_BACK_PAIN_CODES[0])]
        self.files.write(resource)
        return identifier

    def study(
        self,
        coding: tuple[str, str, str],
        modality: str,
        day: date,
        practitioner: str,
        based_on: str | None,
    ) -> str:
        identifier = self.new_id("img")
        resource: dict[str, Any] = {
            "resourceType": "ImagingStudy",
            "id": identifier,
            "status": "available",
            "subject": _ref("Patient", self.pid),
            "started": _instant(day, 14),
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}],
            "procedureCode": [_concept(coding)],
            "referrer": _ref("Practitioner", practitioner),
        }
        if based_on is not None:
            resource["basedOn"] = [_ref("ServiceRequest", based_on)]
        self.files.write(resource)
        return identifier


@dataclass(slots=True)
class _Answers:
    orders: list[dict[str, Any]] = field(default_factory=list)
    measure_patients: list[dict[str, Any]] = field(default_factory=list)
    scenarios: dict[str, int] = field(default_factory=dict)


def _pick_scenario(rng: random.Random) -> Scenario:
    return rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS])[0]


def _background(rng: random.Random, patient: _Patient, born: date, year: int, practitioner: str) -> None:
    """Distractor conditions, medications and visits with vitals over two years."""
    for coding in rng.sample(DISTRACTORS, rng.randint(0, 3)):
        patient.condition(coding, date(year - 1, 1, 1) + timedelta(days=rng.randint(0, 600)))
    for drug in rng.sample(DISTRACTOR_DRUGS, rng.randint(0, 2)):
        patient.medication(date(year - 1, 1, 1) + timedelta(days=rng.randint(0, 700)), drug)
    weight = round(rng.uniform(52, 105), 1)
    height = rng.uniform(1.55, 1.92)
    visits = sorted(rng.sample(range(0, 730), rng.randint(2, 7)))
    for offset in visits:
        day = date(year - 1, 1, 1) + timedelta(days=offset)
        patient.encounter(day, practitioner)
        reading = round(weight * rng.uniform(0.99, 1.01), 1)  # stable: no weight loss
        patient.vital(day, "29463-7", "Body weight", reading, "kg", "kg")
        patient.vital(day, "8310-5", "Body temperature", round(rng.uniform(36.3, 37.3), 1), "Cel", "Cel")
        patient.vital(day, "8867-4", "Heart rate", rng.randint(58, 92), "/min", "/min")
        patient.vital(day, "9279-1", "Respiratory rate", rng.randint(12, 18), "/min", "/min")
        patient.vital(day, "39156-5", "Body mass index", round(reading / height**2, 1), "kg/m2", "kg/m2")
        patient.vital(day, "8480-6", "Systolic blood pressure", rng.randint(105, 150), "mm[Hg]", "mm[Hg]")


def _measure_intent(
    scenario: Scenario, born: date, diagnosis: date, imaging_days: list[date], year: int
) -> dict[str, Any]:
    """What CMS166v7 makes of this patient, from the scenario's own dates (not from the resources)."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    in_intake = start <= diagnosis <= date(year, 12, 3)
    ages_ok = _years_between(born, start) >= 18 and _years_between(born, end) <= 50
    initial = in_intake and ages_ok
    excluded = initial and scenario.measure_exclusion is not None
    imaged = any(diagnosis <= day <= diagnosis + timedelta(days=28) for day in imaging_days)
    return {
        "initialPopulation": initial,
        "denominator": initial and not excluded,
        "exclusion": scenario.measure_exclusion if excluded else None,
        "imagedWithin28Days": imaged if initial else None,
        "numerator": initial and not excluded and not imaged,
        "indexDate": diagnosis.isoformat() if initial else None,
    }


def _back_pain(
    rng: random.Random,
    patient: _Patient,
    scenario: Scenario,
    year: int,
    practitioners: list[str],
    answers: _Answers,
) -> None:
    """Writes the scenario's resources and states its known answers."""
    # Orders in Feb..Dec of `year`, so the pain (and a later second order) stays within reach of the year.
    first_order = date(year, 2, 1) + timedelta(days=rng.randint(0, 290))
    onset = (
        first_order - timedelta(days=rng.randint(*scenario.onset_days)) if scenario.imaged else first_order
    )
    age = rng.randint(*scenario.ages)
    born = _birth_date(rng, age, first_order)
    patient.files.write(
        {
            "resourceType": "Patient",
            "id": patient.pid,
            "gender": rng.choice(("female", "male")),
            "birthDate": born.isoformat(),
            "name": [{"family": "Synthetic", "given": [f"P{patient.pid[-6:]}"]}],
        }
    )
    clinician = rng.choice(practitioners)
    _background(rng, patient, born, year, clinician)
    patient.condition(rng.choice(LOW_BACK_PAIN_CODES), onset)
    patient.encounter(onset, clinician)
    imaging_days: list[date] = []

    def judged(
        reference: str,
        day: date,
        procedure: str,
        verdict: str,
        variants: tuple[str, ...],
        flags: tuple[str, ...],
        by: str,
    ) -> None:
        answers.orders.append(
            {
                "reference": reference,
                "patient": f"Patient/{patient.pid}",
                "date": day.isoformat(),
                "procedure": procedure,
                "orderer": f"Practitioner/{by}",
                "scenario": scenario.name,
                "appropriateness": verdict,
                "variants": list(variants),
                "redFlags": sorted(flags),
            }
        )

    name = scenario.name
    if name == "cancer-history" or name == "study-without-order":
        patient.condition(CANCER, onset - timedelta(days=rng.randint(400, 2500)), active=False)
    elif name == "fever":
        patient.vital(
            first_order - timedelta(days=rng.randint(0, 3)),
            "8310-5",
            "Body temperature",
            round(rng.uniform(38.3, 39.4), 1),
            "Cel",
            "Cel",
        )
    elif name == "acute-fever-after-order":
        patient.vital(first_order + timedelta(days=2), "8310-5", "Body temperature", 38.9, "Cel", "Cel")
    elif name == "osteoporosis":
        patient.condition(OSTEOPOROSIS, first_order - timedelta(days=rng.randint(200, 2000)))
    elif name == "cauda-equina":
        patient.condition(CAUDA_EQUINA, first_order - timedelta(days=rng.randint(0, 2)))
    elif name == "prior-surgery":
        patient.procedure(LUMBAR_SURGERY, onset - timedelta(days=rng.randint(365, 1800)))
    elif name == "persistent-after-therapy":
        for session in range(rng.randint(3, 6)):
            patient.procedure(PHYSICAL_THERAPY, onset + timedelta(days=7 + 3 * session))
    elif name == "hiv-no-imaging":
        patient.condition(HIV, onset - timedelta(days=rng.randint(200, 3000)))

    if scenario.imaged:
        procedure = rng.choice(sorted(scenario.verdicts))
        coding, modality = ORDERS[procedure]
        verdict = scenario.verdicts[procedure]
        if name == "study-without-order":
            reference = "ImagingStudy/" + patient.study(coding, modality, first_order, clinician, None)
            judged(
                reference, first_order, procedure, verdict, scenario.variants, scenario.red_flags, clinician
            )
            imaging_days.append(first_order)
        else:
            order = patient.order(coding, first_order, clinician, reason=rng.random() < 0.5)
            judged(
                f"ServiceRequest/{order}",
                first_order,
                procedure,
                verdict,
                scenario.variants,
                scenario.red_flags,
                clinician,
            )
            imaging_days.append(first_order)
            if rng.random() < 0.7:  # the study done for the order: linked, so not judged again
                done = first_order + timedelta(days=rng.randint(0, 3))
                patient.study(coding, modality, done, clinician, order)
                imaging_days.append(done)
        if name == "cancer-between-orders":
            diagnosed = first_order + timedelta(days=20)
            patient.condition(CANCER, diagnosed)
            second = first_order + timedelta(days=35)
            coding, _ = ORDERS["mri-lumbar-without-contrast"]
            order = patient.order(coding, second, clinician, reason=False)
            judged(
                f"ServiceRequest/{order}",
                second,
                "mri-lumbar-without-contrast",
                APPROPRIATE,
                ("V7",),
                ("cancer-history",),
                clinician,
            )
            imaging_days.append(second)
    exclusion_scenario = scenario
    if name == "cancer-between-orders":
        # The cancer comes after the diagnosis' 28-day window; CMS166v7 excludes cancer at any time.
        exclusion_scenario = Scenario(**{**_fields(scenario), "measure_exclusion": "cancer"})
    intent = _measure_intent(exclusion_scenario, born, onset, imaging_days, year)
    answers.measure_patients.append({"patient": f"Patient/{patient.pid}", "scenario": name, **intent})


def _fields(scenario: Scenario) -> dict[str, Any]:
    return {name: getattr(scenario, name) for name in Scenario.__slots__}


def _no_back_pain(
    rng: random.Random, patient: _Patient, year: int, practitioners: list[str], answers: _Answers
) -> None:
    age = rng.randint(1, 95)
    born = _birth_date(rng, age, date(year, 7, 1))
    patient.files.write(
        {
            "resourceType": "Patient",
            "id": patient.pid,
            "gender": rng.choice(("female", "male")),
            "birthDate": born.isoformat(),
            "name": [{"family": "Synthetic", "given": [f"P{patient.pid[-6:]}"]}],
        }
    )
    clinician = rng.choice(practitioners)
    _background(rng, patient, born, year, clinician)
    if rng.random() < 0.05:  # imaging, but not of the lumbar spine
        coding, modality = rng.choice(NOT_LUMBAR_IMAGING)
        day = date(year, 1, 1) + timedelta(days=rng.randint(0, 360))
        order = patient.order(coding, day, clinician, reason=False)
        patient.study(coding, modality, day, clinician, order)
    if 20 <= age <= 45 and rng.random() < 0.01:
        # Lumbar imaging without any low back pain diagnosis: the criteria do not apply.
        coding, _ = ORDERS["xr-lumbar"]
        day = date(year, 1, 1) + timedelta(days=rng.randint(0, 360))
        order = patient.order(coding, day, clinician, reason=False)
        answers.orders.append(
            {
                "reference": f"ServiceRequest/{order}",
                "patient": f"Patient/{patient.pid}",
                "date": day.isoformat(),
                "procedure": "xr-lumbar",
                "orderer": f"Practitioner/{clinician}",
                "scenario": "no-low-back-pain",
                "appropriateness": NO_CRITERIA,
                "variants": [],
                "redFlags": [],
            }
        )


@dataclass(frozen=True, slots=True)
class ExportSummary:
    folder: Path
    patients: int
    resources: dict[str, int]
    orders: int


def write_export(
    folder: Path,
    *,
    patients: int,
    seed: int,
    year: int = 2025,
    compress: bool = True,
    patients_per_file: int = 2500,
    back_pain_share: float = 0.18,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Writes `patients` patients as Bulk Data NDJSON files in `folder`, and `known-answers.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible from its seed, not a secret
    files = _Files(folder, compress, max(1, patients_per_file))
    answers = _Answers()
    practitioners = [f"pr-{index:03d}" for index in range(max(5, patients // 400))]
    for practitioner in practitioners:
        files.rotate(0)
        files.write(
            {
                "resourceType": "Practitioner",
                "id": practitioner,
                "name": [{"family": "Clinician", "given": [practitioner.upper()]}],
            }
        )
    for index in range(patients):
        files.rotate(index)
        patient = _Patient(f"{seed:x}{index:07d}", files)
        if rng.random() < back_pain_share:
            scenario = _pick_scenario(rng)
            answers.scenarios[scenario.name] = answers.scenarios.get(scenario.name, 0) + 1
            _back_pain(rng, patient, scenario, year, practitioners, answers)
        else:
            _no_back_pain(rng, patient, year, practitioners, answers)
        if progress is not None:
            progress(index + 1)
    files.close()
    measure = {
        "measure": "CMS166v7",
        "year": year,
        "initialPopulation": sum(p["initialPopulation"] for p in answers.measure_patients),
        "denominator": sum(p["denominator"] for p in answers.measure_patients),
        "exclusions": sum(p["exclusion"] is not None for p in answers.measure_patients),
        "numerator": sum(p["numerator"] for p in answers.measure_patients),
        "patients": [p for p in answers.measure_patients if p["initialPopulation"]],
    }
    known = {
        "seed": seed,
        "patients": patients,
        "year": year,
        "resources": dict(sorted(files.counts.items())),
        "scenarios": dict(sorted(answers.scenarios.items())),
        "orders": sorted(answers.orders, key=lambda o: (o["date"], o["reference"])),
        "measure": measure,
    }
    (folder / KNOWN_ANSWERS).write_text(json.dumps(known, indent=1) + "\n", encoding="utf-8")
    return ExportSummary(folder, patients, dict(files.counts), len(answers.orders))


def iter_known_orders(folder: Path) -> Iterator[dict[str, Any]]:
    yield from json.loads((folder / KNOWN_ANSWERS).read_text(encoding="utf-8"))["orders"]
