"""Gunicorn settings for production and `make run`. Environment variables override (see README)."""

import gc
import multiprocessing
import os
import tempfile
from pathlib import Path
from typing import Any

# Prometheus multiprocess mode: each worker writes its counts to files in this folder and /metrics adds
# them up. Set before the app (and prometheus-client) is loaded; a folder of our own unless one is given.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lbp-imaging-cds-metrics-"))

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"  # noqa: S104 - a container listens on all interfaces
# gthread, with gunicorn's own error pages (414, 431, malformed requests) as the project's JSON errors.
worker_class = "service.http.gunicorn_worker.JsonErrorsThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Load the app once in the master (fhir.resources models, rules, value sets) and fork the workers.
preload_app = True
# No runtime control socket: it would be written to $HOME (read-only in the container) and shared by
# every gunicorn of the same user on a host.
control_socket_disable = True
# A hook should answer in ~500 ms and the FHIR fetch deadline is 2 s: a worker stuck for 30 s is broken.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Header limits against oversized request lines/headers; the body limit is CDS_MAX_BODY_BYTES (413).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 16384
# Our JSON log lines carry the request record; gunicorn's access log would repeat the URL.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Gunicorn's own lines (worker start/exit, timeouts) as JSON lines like the app's, so one parser reads all.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.security.log_format.JsonLinesFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    # The app installs its own root handler at start-up (service.security.configure_logging).
    "root": {"level": loglevel.upper(), "handlers": []},
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False}},
}


def on_starting(server: Any) -> None:
    """Counts from a previous run of this server are not this run's: start from empty files."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges go; its counters stay in the totals (prometheus-client's rule)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def pre_fork(server: Any, worker: Any) -> None:
    """The preloaded app (models, rules, value sets) is never freed: keep the collector off it, so
    workers share those pages with the master and no full collection walks them mid-request."""
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """Database connections must not cross a fork: each worker opens its own."""
    app = server.app.wsgi()
    app.extensions["lbp-imaging-cds"].store.after_fork()
