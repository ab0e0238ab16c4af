"""openapi.yaml and the code agree, kept so by schemathesis against real gunicorn: every operation, a fixed
seed and a bounded number of examples (schemathesis.toml), failing on any 5xx, a response that breaks the
schema, an undocumented status, a schema-valid request refused or a schema-violating one accepted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "schemathesis-admin-token-0123456789"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("schemathesis")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "CDS_AUTH": "disabled",  # see schemathesis.toml: the JWT checks have their own matrix
        "CDS_PUBLIC_BASE_URL": url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'contract.db'}",
        "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CDS_PATIENT_HASH_KEY": "schemathesis-hash-key",
        "CDS_DEMO": "true",  # the demo room is fuzzed too: bad input there must not be a 500 either
    }
    with (tmp_path / "gunicorn.log").open("wb") as log:
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
                    if requests.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_every_operation_conforms_to_openapi_yaml(base_url: str) -> None:
    result = subprocess.run(
        [str(BIN / "schemathesis"), "run", "openapi.yaml", "--url", base_url],
        cwd=REPO_ROOT,
        env={**os.environ, "SCHEMATHESIS_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in result.stdout  # it ran cases, not nothing
