"""Writes the synthetic sample patients (`<id>.json`, FHIR R4 transaction Bundles) and `index.json`.

`python examples/patients/make_patients.py` rewrites them; `tests/demo/test_sample_patients.py` checks the
files on disk are what this script writes, so a change is made here, not in the JSON. Every patient is
invented. Dates are written as of REFERENCE_DATE; the demo and the seeder move them to the day they run
(`service/demo/patients.py`), so "pain for 10 days" stays 10 days.

Coding follows what EHRs send: ICD-10-CM with a SNOMED CT translation on Conditions (US Core), LOINC with
UCUM units on vital signs, RxNorm on medications, CPT (and SNOMED CT) on procedures and orders.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REFERENCE_DATE = date(2026, 12, 1)

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"

# The lumbar imaging orders the demo offers, by CPT where one CPT names the study (CT myelography is a
# CPT pair, 62304 + 72132, so it is ordered by its LOINC code).
ORDERS: dict[str, dict[str, str]] = {
    "xr-lumbar": {"system": CPT, "code": "72100", "display": "X-ray lumbar spine, 2 or 3 views"},
    "mri-lumbar-without-contrast": {
        "system": CPT,
        "code": "72148",
        "display": "MRI lumbar spine without contrast",
    },
    "mri-lumbar-with-contrast": {"system": CPT, "code": "72149", "display": "MRI lumbar spine with contrast"},
    "mri-lumbar-without-and-with-contrast": {
        "system": CPT,
        "code": "72158",
        "display": "MRI lumbar spine without and with contrast",
    },
    "ct-lumbar-without-contrast": {
        "system": CPT,
        "code": "72131",
        "display": "CT lumbar spine without contrast",
    },
    "ct-lumbar-with-contrast": {"system": CPT, "code": "72132", "display": "CT lumbar spine with contrast"},
    "ct-lumbar-without-and-with-contrast": {
        "system": CPT,
        "code": "72133",
        "display": "CT lumbar spine without and with contrast",
    },
    "ct-myelography-lumbar": {"system": LOINC, "code": "24965-6", "display": "CT myelography lumbar spine"},
}


def day(days_before: int) -> str:
    return (REFERENCE_DATE - timedelta(days=days_before)).isoformat()


def born(age: int, month_day: str = "03-14") -> str:
    return f"{REFERENCE_DATE.year - age - (1 if f'{REFERENCE_DATE:%m-%d}' < month_day else 0)}-{month_day}"


class PatientBuilder:
    def __init__(self, patient_id: str, given: str, family: str, gender: str, birth_date: str) -> None:
        self.id = patient_id
        self.resources: list[dict[str, Any]] = [
            {
                "resourceType": "Patient",
                "id": patient_id,
                "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
                "identifier": [
                    {"system": "urn:oid:2.16.840.1.113883.19.5.99999.1", "value": f"MRN-{patient_id}"}
                ],
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": gender,
                "birthDate": birth_date,
            }
        ]
        self._count = 0

    def _next_id(self, kind: str) -> str:
        self._count += 1
        return f"{self.id}-{kind}-{self._count}"

    def _subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.id}"}

    def condition(
        self, icd10: tuple[str, str], snomed: tuple[str, str] | None, onset: str, *, active: bool = True
    ) -> PatientBuilder:
        coding = [{"system": ICD10, "code": icd10[0], "display": icd10[1]}]
        if snomed:
            coding.append({"system": SNOMED, "code": snomed[0], "display": snomed[1]})
        status = "active" if active else "resolved"
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "id": self._next_id("condition"),
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}
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
                            "code": "problem-list-item",
                        }
                    ]
                }
            ],
            "code": {"coding": coding, "text": icd10[1]},
            "subject": self._subject(),
            "onsetDateTime": onset,
            "recordedDate": onset,
        }
        if not active:
            resource["abatementDateTime"] = onset
        self.resources.append(resource)
        return self

    def vital(self, loinc: tuple[str, str], value: float, unit: str, when: str) -> PatientBuilder:
        self.resources.append(
            {
                "resourceType": "Observation",
                "id": self._next_id("observation"),
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
                "code": {
                    "coding": [{"system": LOINC, "code": loinc[0], "display": loinc[1]}],
                    "text": loinc[1],
                },
                "subject": self._subject(),
                "effectiveDateTime": f"{when}T09:30:00Z",
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )
        return self

    def temperature(self, celsius: float, when: str) -> PatientBuilder:
        return self.vital(("8310-5", "Body temperature"), celsius, "Cel", when)

    def weight(self, kilograms: float, when: str) -> PatientBuilder:
        return self.vital(("29463-7", "Body weight"), kilograms, "kg", when)

    def heart_rate(self, per_minute: float, when: str) -> PatientBuilder:
        return self.vital(("8867-4", "Heart rate"), per_minute, "/min", when)

    def medication_request(
        self, rxnorm: tuple[str, str], authored: str, *, days_supply: int, repeats: int
    ) -> PatientBuilder:
        self.resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": self._next_id("medicationrequest"),
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": rxnorm[0], "display": rxnorm[1]}],
                    "text": rxnorm[1],
                },
                "subject": self._subject(),
                "authoredOn": authored,
                "dosageInstruction": [{"text": "1 tablet by mouth daily"}],
                "dispenseRequest": {
                    "numberOfRepeatsAllowed": repeats,
                    "expectedSupplyDuration": {
                        "value": days_supply,
                        "unit": "days",
                        "system": UCUM,
                        "code": "d",
                    },
                },
            }
        )
        return self

    def medication_statement(self, rxnorm: tuple[str, str], start: str) -> PatientBuilder:
        self.resources.append(
            {
                "resourceType": "MedicationStatement",
                "id": self._next_id("medicationstatement"),
                "status": "active",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": rxnorm[0], "display": rxnorm[1]}],
                    "text": rxnorm[1],
                },
                "subject": self._subject(),
                "effectivePeriod": {"start": start},
            }
        )
        return self

    def procedure(
        self, cpt: tuple[str, str], snomed: tuple[str, str] | None, performed: str
    ) -> PatientBuilder:
        coding = [{"system": CPT, "code": cpt[0], "display": cpt[1]}]
        if snomed:
            coding.append({"system": SNOMED, "code": snomed[0], "display": snomed[1]})
        self.resources.append(
            {
                "resourceType": "Procedure",
                "id": self._next_id("procedure"),
                "status": "completed",
                "code": {"coding": coding, "text": cpt[1]},
                "subject": self._subject(),
                "performedDateTime": performed,
            }
        )
        return self

    def usual_vitals(self, *, kilograms: float) -> PatientBuilder:
        """A normal temperature this week and a steady weight: what most records hold."""
        return (
            self.temperature(36.8, day(1))
            .heart_rate(72, day(1))
            .weight(kilograms, day(1))
            .weight(kilograms + 0.5, day(120))
        )

    def bundle(self) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "id": f"{self.id}-load",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{resource['id']}",
                    "resource": resource,
                    "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
                }
                for resource in self.resources
            ],
        }


LBP = (("M54.50", "Low back pain, unspecified"), ("279039007", "Low back pain"))
HYPERTENSION = (("I10", "Essential (primary) hypertension"), ("59621000", "Essential hypertension"))


def expect(
    procedure: str,
    appropriateness: str,
    indicator: str,
    *,
    urgent: bool = False,
    variants: list[str],
    red_flags: list[str] | None = None,
    suggests: str | None = None,
) -> dict[str, Any]:
    """One order and the card it is expected to get."""
    card: dict[str, Any] = {
        "indicator": indicator,
        "appropriateness": appropriateness,
        "urgent": urgent,
        "variants": variants,
    }
    if red_flags is not None:
        card["redFlags"] = red_flags
    if suggests is not None:
        card["suggests"] = suggests  # the procedure (or "physical-therapy") its first suggestion offers
    return {"procedure": procedure, "code": ORDERS[procedure], "expect": card}


def patients() -> list[tuple[PatientBuilder, dict[str, Any]]]:
    made: list[tuple[PatientBuilder, dict[str, Any]]] = []

    def add(
        builder: PatientBuilder, vignette: str, orders: list[dict[str, Any]], withheld: tuple[str, ...] = ()
    ) -> None:
        story: dict[str, Any] = {"vignette": vignette, "orders": orders}
        if withheld:
            story["prefetchWithheld"] = list(withheld)
        made.append((builder, story))

    add(
        PatientBuilder("demo-acute", "Ana", "Moreno", "female", born(42))
        .condition(*HYPERTENSION, day(900))
        .condition(*LBP, day(10))
        .usual_vitals(kilograms=68),
        "42-year-old with 10 days of low back pain after gardening, no red flags (ACR V1).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-not-appropriate",
                "warning",
                variants=["V1"],
                red_flags=[],
                suggests="physical-therapy",
            ),
            expect(
                "xr-lumbar",
                "usually-not-appropriate",
                "warning",
                variants=["V1"],
                red_flags=[],
                suggests="physical-therapy",
            ),
        ],
    )
    add(
        PatientBuilder("demo-subacute", "Ben", "Okafor", "male", born(38))
        .condition(*LBP, day(60))
        .usual_vitals(kilograms=82),
        "38-year-old with 2 months of low back pain and no treatment tried yet, no red flags (ACR V2).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-not-appropriate",
                "warning",
                variants=["V2"],
                red_flags=[],
                suggests="physical-therapy",
            )
        ],
    )
    add(
        PatientBuilder("demo-persistent", "Carla", "Jensen", "female", born(47))
        .condition(*LBP, day(75))
        .procedure(
            ("97161", "Physical therapy evaluation, low complexity"),
            ("91251008", "Physical therapy procedure"),
            day(55),
        )
        .procedure(("97110", "Therapeutic exercises"), None, day(45))
        .usual_vitals(kilograms=61),
        "47-year-old with 11 weeks of low back pain despite 6 weeks of physical therapy (ACR V3).",
        [
            expect(
                "mri-lumbar-without-contrast", "usually-appropriate", "info", variants=["V3"], red_flags=[]
            ),
            expect(
                "ct-lumbar-without-contrast",
                "may-be-appropriate",
                "info",
                variants=["V3"],
                red_flags=[],
                suggests="mri-lumbar-without-contrast",
            ),
        ],
    )
    add(
        PatientBuilder("demo-cauda-equina", "David", "Nguyen", "male", born(45))
        .condition(*LBP, day(4))
        .condition(("R33.9", "Retention of urine, unspecified"), ("267064002", "Retention of urine"), day(1))
        .usual_vitals(kilograms=90),
        "45-year-old with 4 days of low back pain and new urinary retention since yesterday (V4, urgent).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "critical",
                urgent=True,
                variants=["V4"],
                red_flags=["cauda-equina"],
            ),
            expect(
                "xr-lumbar",
                "usually-not-appropriate",
                "critical",
                urgent=True,
                variants=["V4"],
                red_flags=["cauda-equina"],
                suggests="mri-lumbar-without-contrast",
            ),
            expect(
                "ct-myelography-lumbar",
                "may-be-appropriate",
                "critical",
                urgent=True,
                variants=["V4"],
                red_flags=["cauda-equina"],
                suggests="mri-lumbar-without-contrast",
            ),
        ],
    )
    add(
        PatientBuilder("demo-foot-drop", "Elena", "Rossi", "female", born(44))
        .condition(*LBP, day(9))
        .condition(("M21.371", "Foot drop, right foot"), ("6077001", "Foot drop"), day(2))
        .usual_vitals(kilograms=64),
        "44-year-old with low back pain and a new right foot drop: progressive neurologic deficit (urgent).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "critical",
                urgent=True,
                variants=["neuro"],
                red_flags=["severe-neurologic-deficit"],
            )
        ],
    )
    add(
        PatientBuilder("demo-cancer-history", "Frank", "Weber", "male", born(66))
        .condition(
            ("Z85.46", "Personal history of malignant neoplasm of prostate"),
            ("429087003", "History of malignant neoplasm of prostate"),
            day(2100),
        )
        .condition(*LBP, day(20))
        .usual_vitals(kilograms=79),
        "66-year-old treated for prostate cancer 6 years ago, now 3 weeks of low back pain (ACR V7).",
        [
            expect(
                "mri-lumbar-without-and-with-contrast",
                "usually-appropriate",
                "info",
                variants=["V7"],
                red_flags=["age-over-50", "cancer-history"],
            ),
            expect(
                "mri-lumbar-with-contrast",
                "usually-not-appropriate",
                "warning",
                variants=["V7"],
                red_flags=["age-over-50", "cancer-history"],
                suggests="mri-lumbar-without-and-with-contrast",
            ),
        ],
    )
    add(
        PatientBuilder("demo-fever", "Grace", "Kim", "female", born(39))
        .condition(*LBP, day(3))
        .temperature(38.6, day(1))
        .heart_rate(104, day(1))
        .weight(58, day(1))
        .weight(58.4, day(150)),
        "39-year-old with 3 days of low back pain and a temperature of 38.6 °C yesterday (infection, V7).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "info",
                variants=["V7"],
                red_flags=["fever"],
            )
        ],
    )
    add(
        PatientBuilder("demo-iv-drug-use", "Hugo", "Baptiste", "male", born(34))
        .condition(
            ("F11.20", "Opioid dependence, uncomplicated"), ("75544000", "Opioid dependence"), day(400)
        )
        .condition(*LBP, day(6))
        .usual_vitals(kilograms=70),
        "34-year-old who injects opioids, with 6 days of low back pain (infection risk, ACR V7).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "info",
                variants=["V7"],
                red_flags=["iv-drug-use"],
            )
        ],
    )
    add(
        PatientBuilder("demo-hiv", "Ines", "Duarte", "female", born(48))
        .condition(
            ("B20", "Human immunodeficiency virus [HIV] disease"), ("86406008", "HIV infection"), day(3000)
        )
        .condition(*LBP, day(12))
        .usual_vitals(kilograms=55),
        "48-year-old living with HIV, 12 days of low back pain (immunosuppression, ACR V7).",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "info",
                variants=["V7"],
                red_flags=["immunosuppression"],
            )
        ],
    )
    add(
        PatientBuilder("demo-osteoporosis", "Julia", "Svensson", "female", born(64))
        .condition(
            ("M81.0", "Age-related osteoporosis without current pathological fracture"),
            ("102447009", "Osteoporosis due to aging"),
            day(1500),
        )
        .condition(*LBP, day(5))
        .medication_statement(("904419", "alendronate sodium 70 MG Oral Tablet"), day(1400))
        .usual_vitals(kilograms=52),
        "64-year-old with osteoporosis on alendronate and 5 days of low back pain (fracture risk, ACR V6).",
        [
            expect(
                "xr-lumbar",
                "usually-appropriate",
                "info",
                variants=["V6"],
                red_flags=["age-over-50", "osteoporosis"],
            ),
            expect(
                "mri-lumbar-without-contrast",
                "usually-appropriate",
                "info",
                variants=["V6"],
                red_flags=["age-over-50", "osteoporosis"],
            ),
        ],
    )
    add(
        PatientBuilder("demo-steroids", "Karl", "Becker", "male", born(46))
        .condition(
            ("J44.9", "Chronic obstructive pulmonary disease, unspecified"), ("13645005", "COPD"), day(2000)
        )
        .condition(*LBP, day(7))
        .medication_request(("312617", "predniSONE 5 MG Oral Tablet"), day(200), days_supply=30, repeats=5)
        .usual_vitals(kilograms=88),
        "46-year-old with COPD on prednisone for 6 months, 1 week of low back pain (fracture risk, ACR V6).",
        [
            expect(
                "xr-lumbar",
                "usually-appropriate",
                "info",
                variants=["V6"],
                red_flags=["prolonged-corticosteroids"],
            )
        ],
    )
    add(
        PatientBuilder("demo-elderly", "Lena", "Horvat", "female", born(78))
        .condition(*HYPERTENSION, day(4000))
        .condition(*LBP, day(8))
        .usual_vitals(kilograms=60),
        "78-year-old with 8 days of low back pain after lifting a box (older age, fracture risk, ACR V6).",
        [
            expect(
                "xr-lumbar",
                "usually-appropriate",
                "info",
                variants=["V6"],
                red_flags=["age-over-50", "age-over-70"],
            )
        ],
    )
    add(
        PatientBuilder("demo-prior-surgery", "Marco", "Bianchi", "male", born(49))
        .procedure(
            ("22630", "Arthrodesis, posterior interbody technique, lumbar"),
            ("202725007", "Lumbar spine fusion"),
            day(800),
        )
        .condition(*LBP, day(14))
        .usual_vitals(kilograms=85),
        "49-year-old with a lumbar fusion 2 years ago and 2 weeks of new low back pain (ACR V5).",
        [
            expect(
                "mri-lumbar-without-and-with-contrast",
                "usually-appropriate",
                "info",
                variants=["V5"],
                red_flags=["prior-lumbar-surgery"],
            )
        ],
    )
    add(
        PatientBuilder("demo-no-observations", "Nora", "Lindqvist", "female", born(44)).condition(
            *LBP, day(12)
        ),
        "44-year-old with 12 days of low back pain; the EHR sends no vital signs with the order (its "
        "Observations are not shared): fever and weight loss cannot be checked.",
        [
            expect(
                "mri-lumbar-without-contrast",
                "usually-not-appropriate",
                "warning",
                variants=["V1"],
                red_flags=[],
                suggests="physical-therapy",
            )
        ],
        withheld=("observations",),
    )
    return made


def index(made: list[tuple[PatientBuilder, dict[str, Any]]]) -> dict[str, Any]:
    entries = []
    for builder, story in made:
        patient = builder.resources[0]
        name = patient["name"][0]
        entries.append(
            {
                "id": builder.id,
                "file": f"{builder.id}.json",
                "name": f"{name['given'][0]} {name['family']}",
                "gender": patient["gender"],
                "birthDate": patient["birthDate"],
                "vignette": story["vignette"],
                "orders": story["orders"],
                **({"prefetchWithheld": story["prefetchWithheld"]} if "prefetchWithheld" in story else {}),
            }
        )
    return {
        "_comment": (
            "Synthetic sample patients, invented for the demo and its tests (make_patients.py writes this "
            "file and the Bundles). Dates are as of referenceDate; the demo and the seeder move every date "
            "by the days between referenceDate and the day they run. Each order lists the card it is "
            "expected to get: its indicator, the order's appropriateness and urgency, the variants applied, "
            "the red flags found and, where it offers one, what its first suggestion orders instead. "
            "prefetchWithheld names the prefetch keys the demo EHR does not send for a patient (data the "
            "EHR does not share), so the card says what could not be checked."
        ),
        "referenceDate": REFERENCE_DATE.isoformat(),
        "orderCodes": ORDERS,
        "patients": entries,
    }


def rendered() -> dict[str, str]:
    """File name -> content, as this script writes them."""
    made = patients()
    files = {f"{builder.id}.json": json.dumps(builder.bundle(), indent=2) + "\n" for builder, _ in made}
    files["index.json"] = json.dumps(index(made), indent=2, ensure_ascii=False) + "\n"
    return files


def main() -> None:
    for name, content in rendered().items():
        (HERE / name).write_text(content, encoding="utf-8")


if __name__ == "__main__":
    main()
