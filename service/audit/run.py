"""The audit from export folder to report folder: partition (pass 1), judge per bucket (pass 2), write.

Both passes run on `workers` processes (files in pass 1, buckets in pass 2); results come back in bucket
order, so the report is the same whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from fhir_mappings import check_terminology
from fhir_mappings.inputs import KIND_OF_TYPE
from fhir_mappings.model import InputKind
from fhir_mappings.orders import is_lumbar_imaging
from service.audit.html import render
from service.audit.judge import Context, is_lumbar_study, judge_patient, names_low_back_pain
from service.audit.measure import MeasureTally, evaluate, load_measure
from service.audit.partition import (
    FileStats,
    bucket_count,
    merge_counts,
    partition_file,
    read_bucket,
)
from service.audit.reader import Issue, Line, export_files
from service.audit.report import RowWriter, write_issues
from service.rules import Rules, load_rules

HASH_KEY_ENV = "CDS_PATIENT_HASH_KEY"
Progress = Callable[[str, int, int, int], None]  # phase, done, total, patients so far


def is_interesting(line: Line) -> bool:
    """Lines that make a patient worth judging: lumbar imaging, or a low back pain diagnosis."""
    if line.kind == "ServiceRequest":
        return is_lumbar_imaging(line.resource)
    if line.kind == "ImagingStudy":
        return is_lumbar_study(line.resource)
    if line.kind == "Condition":
        return names_low_back_pain(line.resource) or load_measure().matches(
            "low-back-pain", line.resource.get("code")
        )
    return False


@dataclass(frozen=True, slots=True)
class Options:
    export: Path
    out: Path
    start: date | None = None
    end: date | None = None
    show_patient_ids: bool = False
    workers: int = 1
    hash_key: bytes | None = None
    measure_year: int | None = None  # the year the report shows first (default: the latest one)


@dataclass(slots=True)
class BucketResult:
    bucket: int
    rows: list[dict[str, Any]]
    issues: list[Issue]
    measure: list[dict[str, Any]] = field(default_factory=list)  # one per patient and year
    patients: int = 0
    judged_patients: int = 0
    outside_window: int = 0
    not_orders: int = 0
    linked_studies: int = 0


@dataclass(frozen=True, slots=True)
class _Work:
    """What a pass-2 worker needs; set before the pool forks (or passed to a remote worker)."""

    spill: Path
    files: int
    context: Context


class _Labeller:
    """Patient references as keyed hashes (HMAC-SHA256), or as themselves with --show-patient-ids."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key

    def __call__(self, reference: str) -> str:
        if self.key is None:
            return reference
        return hmac.new(self.key, reference.encode(), hashlib.sha256).hexdigest()


def judge_bucket(work: _Work, bucket: int) -> BucketResult:
    """Pass 2 for one bucket: its patients grouped, the interesting ones parsed and judged."""
    patients = read_bucket(work.spill, bucket, work.files)
    result = BucketResult(bucket, rows=[], issues=[], patients=len(patients))
    for patient in sorted(patients):
        entry = patients[patient]
        if not entry.interesting:
            continue
        lines = [Line(patient, kind, json.loads(text), text) for kind, text in entry.lines if kind[0] != "!"]
        # Marker lines: a malformed line named this patient, so that part of their record is partial.
        partial = {
            KIND_OF_TYPE[kind[1:]] for kind, _ in entry.lines if kind[0] == "!" and kind[1:] in KIND_OF_TYPE
        }
        judged = judge_patient(patient, lines, work.context, partial=frozenset(partial))
        result.judged_patients += bool(judged.rows)
        result.rows.extend(judged.rows)
        result.issues.extend(judged.issues)
        result.outside_window += judged.outside_window
        result.not_orders += judged.not_orders
        result.linked_studies += judged.linked_studies
        label = work.context.patient_label(f"Patient/{patient}")
        result.measure.extend(outcome.as_json(label) for outcome in evaluate(lines))
    return result


_WORK: _Work | None = None


def _judge_forked(bucket: int) -> BucketResult:
    assert _WORK is not None, "set before the pool forks"
    return judge_bucket(_WORK, bucket)


class Engine(Protocol):
    """Runs tasks elsewhere (`service.audit.engines.DaskEngine`) and yields results in submission order."""

    def map(self, function: Callable[..., Any], *iterables: Sequence[Any]) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class WorkSpec:
    """Pass 2 for a worker of another engine: everything in it pickles; the worker loads the rules itself
    (the same release's files) and refuses to judge if their version is not the one the run started with."""

    spill: Path
    files: int
    supplied: frozenset[InputKind]
    incomplete: frozenset[InputKind]
    hash_key: bytes | None
    start: date | None
    end: date | None
    rules_version: str


@lru_cache(maxsize=1)
def _worker_rules() -> Rules:
    check_terminology()
    return load_rules()


def judge_spec(spec: WorkSpec, bucket: int) -> BucketResult:
    rules = _worker_rules()
    if rules.version != spec.rules_version:
        raise RuntimeError(
            f"a worker has rules {rules.version}, the run {spec.rules_version}: deploy one release"
        )
    context = Context(
        rules=rules,
        supplied=spec.supplied,
        incomplete=spec.incomplete,
        patient_label=_Labeller(spec.hash_key),
        start=spec.start,
        end=spec.end,
    )
    return judge_bucket(_Work(spec.spill, spec.files, context), bucket)


def _partition_forked(job: tuple[int, Path, int, Path]) -> FileStats:
    index, path, buckets, spill = job
    return partition_file(index, path, buckets, spill, is_interesting)


def _supplied(stats: Sequence[FileStats], names: Sequence[str]) -> tuple[set[InputKind], set[InputKind]]:
    """Kinds the export holds (a file named for the type, or a resource of it), and kinds in part only
    for every patient (a file of the type was damaged, or had an unusable line naming no patient)."""
    supplied: set[InputKind] = set()
    incomplete: set[InputKind] = set()
    for name, stat in zip(names, stats, strict=True):
        kinds = {KIND_OF_TYPE[t] for t in stat.resources if t in KIND_OF_TYPE}
        file_type = name.split(".")[0]
        if file_type in KIND_OF_TYPE:
            kinds.add(KIND_OF_TYPE[file_type])
        supplied |= kinds
        if stat.unattributed:
            incomplete |= kinds
    return supplied, incomplete


def _map(
    pool: Any, function: Callable[[Any], Any], jobs: Sequence[Any]
) -> Iterator[Any]:  # the pool or, with one worker, this process
    if pool is None:
        return map(function, jobs)
    return iter(pool.imap(function, jobs, chunksize=1))


def run_audit(
    options: Options, progress: Progress | None = None, engine: Engine | None = None
) -> dict[str, Any]:
    """Runs the audit and writes REPORT_DIR; returns the summary (also written as summary.json).

    `engine`: run both passes on another engine (a Dask cluster) instead of this machine's processes; the
    spill folder (inside REPORT_DIR) must then be on storage every worker reads. Results come back in
    bucket order either way, so the report is the same.

    Raises `ExportError` for a missing or empty export folder, before writing anything.
    """
    global _WORK
    started = time.perf_counter()
    files, other_files = export_files(options.export)
    check_terminology()
    rules = load_rules()
    options.out.mkdir(parents=True, exist_ok=True)
    key = options.hash_key
    key_is_per_run = False
    if not options.show_patient_ids and key is None:
        env_key = os.environ.get(HASH_KEY_ENV)
        key = env_key.encode() if env_key else secrets.token_bytes(32)
        key_is_per_run = not env_key
    labeller = _Labeller(None if options.show_patient_ids else key)
    buckets = bucket_count(files)
    local = engine is None and options.workers > 1
    pool = multiprocessing.get_context("fork").Pool(options.workers) if local else None
    try:
        with tempfile.TemporaryDirectory(prefix=".audit-spill-", dir=options.out) as spill_name:
            spill = Path(spill_name)
            jobs = [(index, path, buckets, spill) for index, path in enumerate(files)]
            stats: list[FileStats] = []
            read = engine.map(_partition_forked, jobs) if engine else _map(pool, _partition_forked, jobs)
            for stat in read:
                stats.append(stat)
                if progress:
                    progress("read", len(stats), len(files), 0)
            supplied, incomplete = _supplied(stats, [p.name for p in files])
            context = Context(
                rules=rules,
                supplied=frozenset(supplied),
                incomplete=frozenset(incomplete),
                patient_label=labeller,
                start=options.start,
                end=options.end,
            )
            _WORK = _Work(spill, len(files), context)
            if pool is not None:
                pool.close()
                pool.join()
                # Pass 2 forks after the work is set, so every worker inherits it.
                pool = multiprocessing.get_context("fork").Pool(options.workers)
            writer = RowWriter(options.out)
            measure = MeasureTally(options.out / "measure-patients.csv")
            totals = BucketResult(-1, rows=[], issues=[])
            try:
                if engine is not None:
                    spec = WorkSpec(
                        spill,
                        len(files),
                        context.supplied,
                        context.incomplete,
                        labeller.key,
                        options.start,
                        options.end,
                        rules.version,
                    )
                    judged: Iterator[BucketResult] = engine.map(
                        judge_spec, [spec] * buckets, list(range(buckets))
                    )
                else:
                    judged = _map(pool, _judge_forked, range(buckets))
                for done, result in enumerate(judged, start=1):
                    writer.write(result.rows)
                    measure.write(result.measure)
                    totals.issues.extend(result.issues)
                    totals.patients += result.patients
                    totals.judged_patients += result.judged_patients
                    totals.outside_window += result.outside_window
                    totals.not_orders += result.not_orders
                    totals.linked_studies += result.linked_studies
                    if progress:
                        progress("judge", done, buckets, totals.patients)
            finally:
                writer.close()
                measure.close()
    finally:
        _WORK = None
        if pool is not None:
            pool.close()
            pool.join()
    issues = [issue for stat in stats for issue in stat.issues] + totals.issues
    write_issues(options.out / "bad-input.csv", issues)
    resources: dict[str, int] = {}
    ignored: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for stat in stats:
        merge_counts(resources, stat.resources)
        merge_counts(ignored, stat.ignored)
        merge_counts(reasons, stat.issue_reasons)
    bad_lines = sum(stat.issue_count for stat in stats)
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {
        "export": str(options.export),
        "window": {
            "from": options.start.isoformat() if options.start else None,
            "to": options.end.isoformat() if options.end else None,
        },
        "rulesVersion": rules.version,
        "rulesTitle": rules.title,
        "patientIds": "shown"
        if options.show_patient_ids
        else ("keyed hash, key for this run only" if key_is_per_run else f"keyed hash ({HASH_KEY_ENV})"),
        "input": {
            "files": [p.name for p in files],
            "otherFilesNotRead": other_files,
            "lines": sum(stat.lines for stat in stats),
            "resources": dict(sorted(resources.items())),
            "resourcesNotRead": dict(sorted(ignored.items())),
            "badInput": {
                "count": bad_lines,
                "byReason": dict(sorted(reasons.items())),
                "listed": sum(len(stat.issues) for stat in stats),
                "file": "bad-input.csv",
            },
            "suppliedParts": sorted(kind.value for kind in supplied),
            "partsReadInPart": sorted(kind.value for kind in incomplete),
        },
        "patients": totals.patients,
        "patientsWithJudgedOrders": totals.judged_patients,
        "orders": {
            **writer.tally.as_json(),
            "outsideWindow": totals.outside_window,
            "notOrders": totals.not_orders,
            "studiesLinkedToAJudgedOrder": totals.linked_studies,
            "notJudged": [f"{issue.why}" for issue in totals.issues],
        },
        "measure": measure.as_json(options.measure_year),
        "seconds": round(seconds, 3),
        "workers": options.workers,
        "buckets": buckets,
    }
    (options.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (options.out / "report.html").write_text(render(summary), encoding="utf-8")
    return summary
