"""The audit's commands on `python -m service.cli`: `synth-export` and `audit`. No database, no settings."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from service.audit.engines import DaskEngine
from service.audit.progress import progress_for
from service.audit.reader import ExportError
from service.audit.run import Options, run_audit
from service.audit.synth import KNOWN_ANSWERS, write_export


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO date (YYYY-MM-DD), got {text!r}") from None


def add_audit_commands(commands: Any) -> None:
    """Adds the subcommands to the CLI's subparsers (`argparse._SubParsersAction`, private in typeshed)."""
    audit = commands.add_parser(
        "audit",
        help="judge every lumbar imaging order of a FHIR Bulk Data export as of its own date",
    )
    audit.add_argument("export", type=Path, metavar="EXPORT_DIR", help="folder of .ndjson / .ndjson.gz files")
    audit.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR", help="folder to write")
    audit.add_argument("--from", dest="start", type=_day, help="first order date to judge (inclusive)")
    audit.add_argument("--to", dest="end", type=_day, help="last order date to judge (inclusive)")
    audit.add_argument(
        "--show-patient-ids",
        action="store_true",
        help="write patient references as they are (default: keyed hashes with CDS_PATIENT_HASH_KEY, "
        "or with a key made for this run only)",
    )
    audit.add_argument(
        "--workers", type=_count, default=os.cpu_count() or 1, help="processes (default: every core)"
    )
    audit.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: this machine's processes (default); dask: a Dask cluster (see --dask-scheduler)",
    )
    audit.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="the Dask scheduler, e.g. tcp://scheduler:8786 (default: a local cluster of --workers)",
    )
    synth = commands.add_parser(
        "synth-export",
        help="write a synthetic FHIR Bulk Data export with its known answers (for tests and benchmarks)",
    )
    synth.add_argument("--patients", type=_count, required=True, help="how many patients")
    synth.add_argument("--seed", type=int, default=1, help="random seed (the same seed, the same export)")
    synth.add_argument("--out", type=Path, required=True, help="folder to write (created if missing)")
    synth.add_argument("--year", type=int, default=2025, help="the year the lumbar imaging falls in")
    synth.add_argument("--no-gzip", action="store_true", help="write plain .ndjson instead of .ndjson.gz")
    synth.add_argument(
        "--patients-per-file", type=_count, default=2500, help="patients per file of each resource type"
    )


def run_audit_command(arguments: argparse.Namespace) -> int:
    if arguments.command == "synth-export":
        written = write_export(
            arguments.out,
            patients=arguments.patients,
            seed=arguments.seed,
            year=arguments.year,
            compress=not arguments.no_gzip,
            patients_per_file=arguments.patients_per_file,
        )
        total = sum(written.resources.values())
        print(
            f"wrote {written.patients} patients, {total} resources, {written.orders} lumbar imaging orders "
            f"to {written.folder}; known answers in {written.folder / KNOWN_ANSWERS}"
        )
        return 0
    options = Options(
        export=arguments.export,
        out=arguments.out,
        start=arguments.start,
        end=arguments.end,
        show_patient_ids=arguments.show_patient_ids,
        workers=arguments.workers,
    )
    if options.start and options.end and options.start > options.end:
        print("error: --from is after --to", file=sys.stderr)
        return 2
    try:
        if arguments.engine == "dask":
            with DaskEngine(arguments.dask_scheduler, workers=arguments.workers) as engine:
                summary = run_audit(options, progress=progress_for(sys.stderr), engine=engine)
        else:
            summary = run_audit(options, progress=progress_for(sys.stderr))
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    orders = summary["orders"]
    bad = summary["input"]["badInput"]["count"]
    print(
        f"judged {orders['judged']} lumbar imaging orders of {summary['patients']} patients "
        f"in {summary['seconds']} s; {bad} unusable lines (bad-input.csv); report in {options.out}"
    )
    return 0
