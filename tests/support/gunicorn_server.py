"""The service under real gunicorn (gunicorn.conf.py) on a free loopback port, for tests of what lives in
the server layer or across workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_gunicorn(folder: Path, settings: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """gunicorn with auth off, SQLite in `folder`, 2 workers; `settings` (environment variables) win."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "CDS_AUTH": "disabled",
        "CDS_PUBLIC_BASE_URL": base_url,
        "DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
        **settings,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes a fresh one
    log_path = folder / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "service:create_app()"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield process, base_url
        finally:
            process.terminate()
            process.wait(timeout=30)
