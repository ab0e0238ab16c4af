"""Command line for operators: the summary report, the retention purge and the retrospective audit.

    python -m service.cli report [--from 2024-05-01] [--to 2024-05-31] [--orderer Practitioner/123] [--json]
    python -m service.cli purge [--older-than-days N]
    python -m service.cli audit EXPORT_DIR --out REPORT_DIR [--from D] [--to D] [--show-patient-ids]
    python -m service.cli synth-export --patients N --seed S --out DIR

Settings come from the environment as for the service (DATABASE_URL, CDS_RETENTION_DAYS, ...); `audit`
and `synth-export` need no database (`service/audit/commands.py`). Exit status: 0 done, 1 the database
failed, 2 bad arguments or settings (for `audit`: an empty or missing export folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from service.audit.commands import add_audit_commands, run_audit_command
from service.config import ConfigError, load_settings
from service.store import ReportParameterError, Store, StoreError, format_summary, report_window
from service.store.records import iso_utc
from service.store.reports import DEFAULT_REPORT_DAYS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.cli", description="lbp-imaging-cds operator commands"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="print the summary report of assessments and feedback")
    report.add_argument(
        "--from",
        dest="start",
        help=f"ISO date or date-time (default: {DEFAULT_REPORT_DAYS} days before --to)",
    )
    report.add_argument("--to", dest="end", help="ISO date (inclusive) or date-time (default: now)")
    report.add_argument(
        "--orderer",
        help="only this ordering clinician's assessments: the reference the EHR sends as CDS Hooks "
        "context.userId, e.g. Practitioner/123 (needs CDS_PATIENT_HASH_KEY)",
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    purge = commands.add_parser("purge", help="delete records older than the retention period")
    purge.add_argument(
        "--older-than-days",
        type=_positive_int,
        help="retention in days (default: CDS_RETENTION_DAYS)",
    )
    add_audit_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    if arguments.command in ("audit", "synth-export"):
        return run_audit_command(arguments)
    now = datetime.now(UTC)
    try:
        settings = load_settings()
        if arguments.command == "report":
            start, end = report_window(arguments.start, arguments.end, now=now)
        store = Store.open(
            settings.database_url, patient_hash_key=settings.patient_hash_key, clock=lambda: now
        )
    except (ConfigError, ReportParameterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        if arguments.command == "report":
            summary = store.summary(start, end, orderer=arguments.orderer)
            print(json.dumps(summary, indent=2) if arguments.json else format_summary(summary).rstrip("\n"))
        else:
            days = arguments.older_than_days or settings.retention_days
            cutoff = now - timedelta(days=days)
            deleted = store.purge_older_than(cutoff)
            print(f"deleted {deleted} records created before {iso_utc(cutoff)} (retention {days} days)")
    except ReportParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
