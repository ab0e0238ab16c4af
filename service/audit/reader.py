"""Reads a Bulk Data export's NDJSON files line by line, and says what each line is or why it is unusable.

A line is a resource of a patient (its id, type and text), a resource the audit does not read
(Practitioner, Organization...: counted), or bad input: malformed JSON, not an object, no or an unknown
`resourceType`, a Patient without id, a patient's resource without a `subject` naming a Patient. A gzip
file that ends early yields its lines up to the damage and then one issue. Nothing here raises for bad
content; a missing or empty folder is `ExportError` (the CLI's exit status 2).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_mappings.fhirjson import reference_key
from fhir_mappings.validation import is_known_resource_type

SUFFIXES = (".ndjson", ".ndjson.gz")
# The types read for a patient; each names the patient in `subject` (Patient: its own id).
PATIENT_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
        "ServiceRequest",
        "ImagingStudy",
        "Encounter",
    }
)
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PATIENT_IN_TEXT = re.compile(rb'"reference"\s*:\s*"(?:[^"]*/)?Patient/([A-Za-z0-9\-.]{1,64})"')


class ExportError(Exception):
    """The export folder is missing, not a folder, or holds no NDJSON file."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One unusable line (or a damaged file): where, and why. `line` 0 means the file as a whole."""

    file: str
    line: int
    why: str
    # The patient a malformed line names ("Patient/<id>" found in its text), when one can be seen: only
    # that patient's record is then read in part. None: nobody can tell whose data was lost.
    patient: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A patient's resource as read: the patient id, its type, the object and its original text."""

    patient: str
    kind: str
    resource: dict[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid resource of a type the audit does not read (Practitioner, Organization, Medication...)."""

    kind: str


def export_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The NDJSON files of an export (sorted by name), and the names of other files left unread."""
    if not folder.exists():
        raise ExportError(f"export folder {folder} does not exist")
    if not folder.is_dir():
        raise ExportError(f"{folder} is not a folder")
    files: list[Path] = []
    others: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.name.endswith(SUFFIXES):
            files.append(path)
        else:
            others.append(path.name)
    if not files:
        raise ExportError(f"export folder {folder} holds no .ndjson or .ndjson.gz file")
    return files, others


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes | Issue]]:
    """(line number, bytes) for each line; a damaged gzip ends with an Issue instead of raising."""
    number = 0
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    yield number, raw
        else:
            with path.open("rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    yield number, raw
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        yield number + 1, Issue(path.name, number + 1, f"damaged or truncated file ({error}); rest not read")


def _patient_of(resource: dict[str, Any], kind: str) -> str | None:
    if kind == "Patient":
        identifier = resource.get("id")
        return identifier if isinstance(identifier, str) and _FHIR_ID.fullmatch(identifier) else None
    key = reference_key(resource.get("subject"))
    if key is None or not key.startswith("Patient/"):
        return None
    identifier = key.removeprefix("Patient/")
    return identifier if _FHIR_ID.fullmatch(identifier) else None


def _patient_named(raw: bytes) -> str | None:
    found = _PATIENT_IN_TEXT.search(raw)
    return None if found is None else found.group(1).decode("ascii")


def read_lines(path: Path) -> Iterator[Line | Ignored | Issue]:
    """Every line of one file, as a patient's resource, a resource not read, or an issue."""
    name = path.name
    for number, raw in _raw_lines(path):
        if isinstance(raw, Issue):
            yield raw
            continue
        if not raw.strip():
            continue  # a blank line (a trailing newline) carries nothing
        try:
            text = raw.decode("utf-8").strip()
            resource = json.loads(text)
        except UnicodeDecodeError:
            yield Issue(name, number, "not UTF-8", _patient_named(raw))
            continue
        except json.JSONDecodeError as error:
            why = f"malformed JSON ({error.msg} at column {error.colno})"
            yield Issue(name, number, why, _patient_named(raw))
            continue
        if not isinstance(resource, dict):
            yield Issue(name, number, "not a JSON object")
            continue
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not kind:
            yield Issue(name, number, "no resourceType")
            continue
        if kind not in PATIENT_TYPES:
            if is_known_resource_type(kind):
                yield Ignored(kind)
            else:
                yield Issue(name, number, f"unknown resource type {kind[:64]!r}")
            continue
        patient = _patient_of(resource, kind)
        if patient is None:
            why = "Patient without a valid id" if kind == "Patient" else f"{kind} with no subject Patient"
            yield Issue(name, number, why)
            continue
        yield Line(patient, kind, resource, text)
