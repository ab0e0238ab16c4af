"""The synthetic sample patients of `examples/patients/`, dated to today, and a read-only FHIR search over
them: what the demo page's "EHR" holds when no FHIR server is configured.

The Bundles are written as of the index's `referenceDate`; every date in them moves by the days from that
date to `today`, so a vignette's "10 days of back pain" is 10 days whichever day the demo runs. Birth dates
move too: ages stay as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FOLDER = REPO_ROOT / "examples" / "patients"
# FHIR R4 date and dateTime elements the sample Bundles use (Period.start / end included).
_DATE_KEYS = frozenset(
    {
        "birthDate",
        "onsetDateTime",
        "abatementDateTime",
        "recordedDate",
        "effectiveDateTime",
        "issued",
        "authoredOn",
        "performedDateTime",
        "occurrenceDateTime",
        "start",
        "end",
    }
)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})")
SEARCHABLE_TYPES = frozenset(
    {"Condition", "Observation", "MedicationRequest", "MedicationStatement", "Procedure", "ServiceRequest"}
)


class UnknownSamplePatient(LookupError):
    """No sample patient has this id."""


@dataclass(frozen=True, slots=True)
class SamplePatient:
    id: str
    name: str
    gender: str
    birth_date: str
    vignette: str
    orders: tuple[Mapping[str, Any], ...]  # {"procedure", "code", "expect"} as in index.json
    resources: tuple[Mapping[str, Any], ...]  # Patient first, dated to the day they were loaded for
    prefetch_withheld: tuple[str, ...] = ()  # prefetch keys the demo EHR does not send (data not shared)

    def summary(self) -> dict[str, Any]:
        """What the patient picker shows: no resources."""
        return {
            "id": self.id,
            "name": self.name,
            "gender": self.gender,
            "birthDate": self.birth_date,
            "vignette": self.vignette,
            "orders": [dict(order) for order in self.orders],
            "prefetchWithheld": list(self.prefetch_withheld),
        }


@dataclass(frozen=True, slots=True)
class SamplePatients:
    reference_date: date
    order_codes: Mapping[str, Mapping[str, str]]  # procedure id -> the Coding the demo orders it by
    patients: Mapping[str, SamplePatient]

    def get(self, patient_id: str) -> SamplePatient:
        try:
            return self.patients[patient_id]
        except KeyError:
            raise UnknownSamplePatient(patient_id) from None

    def read(self, resource_type: str, resource_id: str) -> Mapping[str, Any] | None:
        for patient in self.patients.values():
            for resource in patient.resources:
                if resource["resourceType"] == resource_type and resource["id"] == resource_id:
                    return resource
        return None

    def search(
        self, resource_type: str, patient_id: str, codes: Iterable[str] = ()
    ) -> list[Mapping[str, Any]]:
        """A patient's resources of one type; `codes` (`system|code`, or a bare code) keeps those coded so.
        Observations come newest first, as the prefetch templates ask (`_sort=-date`)."""
        wanted = {code.strip() for code in codes if code.strip()}
        found = [
            resource
            for resource in self.get(patient_id).resources
            if resource["resourceType"] == resource_type and (not wanted or _coded_as(resource, wanted))
        ]
        if resource_type == "Observation":
            found.sort(key=lambda resource: str(resource.get("effectiveDateTime", "")), reverse=True)
        return found


def _coded_as(resource: Mapping[str, Any], wanted: set[str]) -> bool:
    for coding in resource.get("code", {}).get("coding", []):
        if f"{coding.get('system')}|{coding.get('code')}" in wanted or coding.get("code") in wanted:
            return True
    return False


def shift_dates(value: Any, days: int) -> Any:
    """A copy of a FHIR JSON value with every date element moved by `days`."""
    if isinstance(value, dict):
        return {
            key: _shifted(item, days)
            if key in _DATE_KEYS and isinstance(item, str)
            else shift_dates(item, days)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [shift_dates(item, days) for item in value]
    return value


def _shifted(text: str, days: int) -> str:
    match = _DATE_PREFIX.match(text)
    if not match or days == 0:
        return text
    moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
    return moved.isoformat() + text[match.end() :]


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        dict(entry["resource"])
        for entry in bundle.get("entry", [])
        if isinstance(entry.get("resource"), dict)
    ]


def load_index(folder: Path = DEFAULT_FOLDER) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return index


def load_sample_patients(folder: Path = DEFAULT_FOLDER, today: date | None = None) -> SamplePatients:
    """The sample patients, their dates moved to `today` (None: as written)."""
    return _load(folder.resolve(), today)


@lru_cache(maxsize=4)
def _load(folder: Path, today: date | None) -> SamplePatients:
    index = load_index(folder)
    reference = date.fromisoformat(index["referenceDate"])
    days = 0 if today is None else (today - reference).days
    patients: dict[str, SamplePatient] = {}
    for entry in index["patients"]:
        bundle = json.loads((folder / entry["file"]).read_text(encoding="utf-8"))
        resources = tuple(shift_dates(resource, days) for resource in bundle_resources(bundle))
        if not resources or resources[0]["resourceType"] != "Patient" or resources[0]["id"] != entry["id"]:
            raise ValueError(f"{entry['file']}: the first entry must be Patient/{entry['id']}")
        patients[entry["id"]] = SamplePatient(
            id=entry["id"],
            name=entry["name"],
            gender=entry["gender"],
            birth_date=str(resources[0].get("birthDate", entry["birthDate"])),
            vignette=entry["vignette"],
            orders=tuple(entry["orders"]),
            resources=resources,
            prefetch_withheld=tuple(entry.get("prefetchWithheld", ())),
        )
    return SamplePatients(reference_date=reference, order_codes=index["orderCodes"], patients=patients)


def transaction_bundles(folder: Path = DEFAULT_FOLDER, today: date | None = None) -> list[dict[str, Any]]:
    """The sample Bundles as the seeder loads them (transaction, PUT by id), dated to `today`."""
    index = load_index(folder)
    days = 0 if today is None else (today - date.fromisoformat(index["referenceDate"])).days
    bundles = []
    for entry in index["patients"]:
        bundle = json.loads((folder / entry["file"]).read_text(encoding="utf-8"))
        bundles.append(shift_dates(bundle, days))
    return bundles


def searchset(resources: Sequence[Mapping[str, Any]], base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }


def age_on(birth_date: str, today: date) -> int | None:
    try:
        born = datetime.strptime(birth_date[:10], "%Y-%m-%d").date()
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
