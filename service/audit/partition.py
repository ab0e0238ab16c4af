"""Groups an export's resources by patient without holding the export in memory: an external hash
partition.

Pass 1 reads each file once (files in parallel) and appends every patient's line, as its original text,
to one of `buckets` spill files chosen by a stable hash of the patient id (`crc32`, so the same export
always gives the same buckets, whatever the number of workers). Pass 2 then reads one bucket at a time:
all of a patient's lines are in one bucket, and a bucket holds about 1/`buckets` of the export, so
memory is bounded by the bucket size, which `bucket_count` keeps near `BUCKET_BYTES` however large the
export. Each spill line is `patient \\t type \\t flag \\t json`: `flag` marks lines that make the patient
worth judging (lumbar imaging, a low back pain diagnosis), so pass 2 parses only those patients' lines.
Patient ids are FHIR ids (no tab), and an NDJSON line holds no newline.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from service.audit.reader import Ignored, Issue, Line, read_lines

BUCKET_BYTES = 32 * 1024 * 1024  # uncompressed NDJSON per bucket, about
GZIP_RATIO = 8  # NDJSON of FHIR compresses about 8:1 (estimate for sizing buckets only)
MAX_LISTED_ISSUES = 10_000  # per file; every issue is counted, the first ones are listed

Interest = Callable[[Line], bool]


def bucket_count(files: list[Path]) -> int:
    estimate = sum(p.stat().st_size * (GZIP_RATIO if p.name.endswith(".gz") else 1) for p in files)
    return max(8, math.ceil(estimate / BUCKET_BYTES))


def bucket_of(patient: str, buckets: int) -> int:
    return zlib.crc32(patient.encode()) % buckets


def spill_name(file_index: int, bucket: int) -> str:
    return f"f{file_index:05d}-b{bucket:05d}.tsv"


@dataclass(slots=True)
class FileStats:
    """What pass 1 saw in one file."""

    file: str
    lines: int = 0
    resources: dict[str, int] = field(default_factory=dict)  # patient resources by type
    ignored: dict[str, int] = field(default_factory=dict)  # resources of types not read
    issues: list[Issue] = field(default_factory=list)  # listed (the first MAX_LISTED_ISSUES)
    issue_count: int = 0
    issue_reasons: dict[str, int] = field(default_factory=dict)
    # Issues no patient can be named for (a damaged file, a line without a patient): the file's kinds
    # are then read only in part for everyone. Unknown resource types are not data the audit reads.
    unattributed: int = 0
    bytes_read: int = 0


def _reason(why: str) -> str:
    """The issue's kind without its particulars, for counting: "malformed JSON (...)" -> "malformed JSON"."""
    return why.split(" (")[0] if not why.startswith("unknown resource type") else "unknown resource type"


def partition_file(
    file_index: int, path: Path, buckets: int, spill: Path, interesting: Interest
) -> FileStats:
    """Pass 1 for one file: every patient line to its bucket's spill file; counts and issues returned."""
    stats = FileStats(path.name, bytes_read=path.stat().st_size)
    handles: dict[int, IO[str]] = {}
    file_type = path.name.split(".")[0]

    def spill_to(patient: str) -> IO[str]:
        bucket = bucket_of(patient, buckets)
        handle = handles.get(bucket)
        if handle is None:
            # Closed in `finally` below, after the whole file: no `with` block can span it.
            handle = (spill / spill_name(file_index, bucket)).open("w", encoding="utf-8")
            handles[bucket] = handle
        return handle

    try:
        for item in read_lines(path):
            if isinstance(item, Issue):
                stats.issue_count += 1
                reason = _reason(item.why)
                stats.issue_reasons[reason] = stats.issue_reasons.get(reason, 0) + 1
                if len(stats.issues) < MAX_LISTED_ISSUES:
                    stats.issues.append(item)
                if item.patient is not None:
                    # A marker line: this patient's part of this type was read only in part.
                    spill_to(item.patient).write(f"{item.patient}\t!{file_type}\t0\t\n")
                elif reason != "unknown resource type":
                    stats.unattributed += 1
                if item.why.startswith("damaged"):
                    continue
                stats.lines += 1
                continue
            stats.lines += 1
            if isinstance(item, Ignored):
                stats.ignored[item.kind] = stats.ignored.get(item.kind, 0) + 1
                continue
            stats.resources[item.kind] = stats.resources.get(item.kind, 0) + 1
            bucket = bucket_of(item.patient, buckets)
            handle = handles.get(bucket)
            if handle is None:
                # Closed in `finally` below, after the whole file: no `with` block can span it.
                handle = (spill / spill_name(file_index, bucket)).open("w", encoding="utf-8")
                handles[bucket] = handle
            flag = "1" if interesting(item) else "0"
            handle.write(f"{item.patient}\t{item.kind}\t{flag}\t{item.text}\n")
    finally:
        for handle in handles.values():
            handle.close()
    return stats


@dataclass(slots=True)
class PatientLines:
    """One patient's spilled lines: (type, text), and whether any of them makes the patient worth judging."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    interesting: bool = False


def read_bucket(spill: Path, bucket: int, files: int) -> Mapping[str, PatientLines]:
    """Pass 2: every patient of one bucket with their lines, in file order then line order."""
    patients: dict[str, PatientLines] = {}
    for file_index in range(files):
        path = spill / spill_name(file_index, bucket)
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for raw in handle:
                patient, kind, flag, text = raw.rstrip("\n").split("\t", 3)
                entry = patients.get(patient)
                if entry is None:
                    entry = patients[patient] = PatientLines()
                entry.lines.append((kind, text))
                if flag == "1":
                    entry.interesting = True
    return patients


def merge_counts(into: dict[str, int], counts: Mapping[str, Any]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + int(value)
