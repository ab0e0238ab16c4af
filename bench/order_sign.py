"""Benchmark: server CPU of one order-sign call with ~200 prefetched resources (the CDS budget: a few ms).

    .venv/bin/python -m bench.order_sign [--calls 200]

Measured around the WSGI app with `time.process_time()` (CPU, not wall time), the body encoded once, the
heap frozen as gunicorn.conf.py does before forking, SQLite audit writes as in `make run`. Prints the
median, p90 and max, and a profile of the hottest functions with `--profile`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from service import create_app
from tests.support.large_record import large_request

SIGN = "/cds-services/lbp-imaging-order-sign"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print the 25 hottest functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "auth": "disabled",
                "database_url": f"sqlite:///{Path(folder) / 'bench.db'}",
                "log_level": "WARNING",
            }
        )
        server_ms: list[float] = []
        inner = app.wsgi_app

        def timed(environ: Any, start_response: Any) -> Any:
            started = time.process_time()
            try:
                return list(inner(environ, start_response))
            finally:
                server_ms.append((time.process_time() - started) * 1000)

        app.wsgi_app = timed  # type: ignore[method-assign]
        client = FlaskClient(app)
        request = large_request()
        resources = sum(len(value.get("entry", [])) for value in request["prefetch"].values() if value)
        body = json.dumps(request).encode()
        for _ in range(5):  # warm-up: first-use imports and caches
            assert client.post(SIGN, data=body, content_type="application/json").status_code == 200
        server_ms.clear()
        gc.freeze()
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        for _ in range(args.calls):
            assert client.post(SIGN, data=body, content_type="application/json").status_code == 200
        if profiler:
            profiler.disable()
        gc.unfreeze()
    ordered = sorted(server_ms)
    print(
        f"order-sign, {resources} prefetched resources, {len(body) / 1024:.0f} KiB body, {args.calls} calls: "
        f"server CPU median {statistics.median(ordered):.2f} ms, "
        f"p90 {ordered[int(len(ordered) * 0.9)]:.2f} ms, max {ordered[-1]:.2f} ms"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
