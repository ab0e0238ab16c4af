"""Benchmark of the retrospective audit: generate an export of N patients, audit it, print the rates.

    python -m bench.audit [--patients 20000] [--workers CORES] [--keep DIR]

Prints patients/s and resources/s of the audit alone (generation is not timed) and the peak resident
memory of the main process and of the largest worker. Figures, not a test: a busy machine gives others.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from service.audit.run import Options, run_audit
from service.audit.synth import write_export


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit")
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the export and report here instead of a temp folder")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as scratch:
        root = arguments.keep or Path(scratch)
        export, report = root / "export", root / "report"
        began = time.perf_counter()
        written = write_export(export, patients=arguments.patients, seed=arguments.seed)
        generated = time.perf_counter() - began
        resources = sum(written.resources.values())
        size = sum(path.stat().st_size for path in export.iterdir())
        print(
            f"export: {arguments.patients} patients, {resources} resources, {size / 2**20:.1f} MiB gzip, "
            f"generated in {generated:.1f} s"
        )
        began = time.perf_counter()
        summary = run_audit(Options(export=export, out=report, workers=arguments.workers, hash_key=b"bench"))
        seconds = time.perf_counter() - began
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"audit: {seconds:.2f} s with {arguments.workers} workers, {summary['buckets']} buckets; "
        f"{summary['orders']['judged']} orders judged"
    )
    print(f"patients/s: {summary['patients'] / seconds:,.0f}")
    print(f"resources/s: {resources / seconds:,.0f}")
    print(f"peak RSS: main process {own:.0f} MiB, largest worker {children:.0f} MiB")


if __name__ == "__main__":
    main()
