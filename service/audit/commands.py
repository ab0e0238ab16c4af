"""The audit's commands on `python -m service.cli`: `synth-export` and `audit`. No database, no settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.audit.synth import KNOWN_ANSWERS, write_export


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_audit_commands(commands: Any) -> None:
    """Adds the subcommands to the CLI's subparsers (`argparse._SubParsersAction`, private in typeshed)."""
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
        summary = write_export(
            arguments.out,
            patients=arguments.patients,
            seed=arguments.seed,
            year=arguments.year,
            compress=not arguments.no_gzip,
            patients_per_file=arguments.patients_per_file,
        )
        total = sum(summary.resources.values())
        print(
            f"wrote {summary.patients} patients, {total} resources, {summary.orders} lumbar imaging orders "
            f"to {summary.folder}; known answers in {summary.folder / KNOWN_ANSWERS}"
        )
        return 0
    print(f"error: unknown command {arguments.command}", file=sys.stderr)
    return 2
