"""Durability and load drills of our own, against real gunicorn (gunicorn.conf.py) on loopback. Not tests:
they take minutes and print figures. `make drills` runs them all; each is bounded in time and count.

    .venv/bin/python -m drills.durability kill    [--calls 2000] [--connections 16] [--database postgres]
    .venv/bin/python -m drills.durability sigterm [--calls 400]
    .venv/bin/python -m drills.durability stalled [--stalled 50]   (nginx in front when installed)
    .venv/bin/python -m drills.durability soak    [--seconds 60]

kill:    a burst of order-sign calls; one worker is SIGKILLed mid-burst. Every 2xx answer's assessment must be
         in the audit store (lost = 0) and the worker respawns.
sigterm: SIGTERM to the master during load: calls in flight finish and are recorded.
stalled: N connections that send less body than they declare, then normal hook calls: their latency, with
         gunicorn alone and behind the buffering nginx of examples/nginx/ (the remedy for slow clients).
soak:    about 80% of the measured saturation rate for a while: errors, p50/p99, worker RSS before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
SIGN = "/cds-services/lbp-imaging-order-sign"
ADMIN_TOKEN = "drill-admin-token-0123456789abcdef"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GUNICORN = Path(sys.executable).with_name("gunicorn")
Result = tuple[int, str | None, float]  # status (0: no answer), assessment id, seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request_body(index: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((REPO / "examples" / "order-sign-lumbar-mri.json").read_text())
    body["hookInstance"] = str(uuid.UUID(int=index + 1))
    return body


@contextmanager
def gunicorn(
    database_url: str, *, workers: int = 2, threads: int = 4, extra: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "CDS_AUTH": "disabled",
        "CDS_PUBLIC_BASE_URL": base,
        "DATABASE_URL": database_url,
        "CDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "warning",
    }
    log = tempfile.NamedTemporaryFile(prefix="drill-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--config",
            "gunicorn.conf.py",
            "service:create_app()",
        ],
        cwd=REPO,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {log.name}")
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _call(session: requests.Session, base: str, index: int) -> Result:
    started = time.perf_counter()
    try:
        response = session.post(base + SIGN, json=_request_body(index), timeout=30)
    except requests.RequestException:
        return 0, None, time.perf_counter() - started
    elapsed = time.perf_counter() - started
    assessment = None
    if response.status_code == 200:
        cards = response.json().get("cards", [])
        if cards:
            assessment = cards[0]["extension"]["lbp-imaging-cds"]["assessmentId"]
    return response.status_code, assessment, elapsed


def _burst(
    base: str, calls: int, connections: int, during: Any = None
) -> list[tuple[int, str | None, float]]:
    local = threading.local()

    def one(index: int) -> Result:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        if during is not None and index == calls // 3:
            during()
        return _call(local.session, base, index)

    with ThreadPoolExecutor(connections) as pool:
        return list(pool.map(one, range(calls)))


def _lost(base: str, results: list[tuple[int, str | None, float]]) -> int:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    missing = 0
    for status, assessment, _ in results:
        if (
            status == 200
            and assessment is not None
            and (
                session.get(f"{base}/assessments/{assessment}", headers=headers, timeout=10).status_code
                != 200
            )
        ):
            missing += 1
    return missing


def _database(name: str, folder: str) -> str:
    return f"sqlite:///{folder}/drill.db" if name == "sqlite" else POSTGRES


def drill_kill(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        gunicorn(_database(args.database, folder)) as (master, base),
    ):
        before = _workers(master.pid)
        killed: list[int] = []

        def kill_one() -> None:
            victim = _workers(master.pid)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

        started = time.monotonic()
        results = _burst(base, args.calls, args.connections, during=kill_one)
        elapsed = time.monotonic() - started
        time.sleep(2)
        after = _workers(master.pid)
        ok = sum(1 for status, _, _ in results if status == 200)
        failed = len(results) - ok
        lost = _lost(base, results)
        print(
            f"kill [{args.database}]: {len(results)} calls from {args.connections} connections "
            f"in {elapsed:.1f} s; "
            f"2xx {ok}, not answered or non-2xx {failed} (calls the killed worker held); "
            f"lost = {lost}; workers before {len(before)}, after {len(after)} (killed {killed[0]}, "
            f"respawned: {sorted(set(after) - set(before))})"
        )


def drill_sigterm(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = _database(args.database, folder)
        with gunicorn(database) as (master, base):
            results = _burst(
                base, args.calls, args.connections, during=lambda: master.send_signal(signal.SIGTERM)
            )
            master.wait(timeout=60)
        ok = [item for item in results if item[0] == 200]
        refused = len(results) - len(ok)
        # The server is gone: count what it recorded with a fresh one on the same database.
        with gunicorn(database) as (_, base):
            lost = _lost(base, results)
    print(
        f"sigterm [{args.database}]: {len(results)} calls, SIGTERM after a third; 2xx {len(ok)}, "
        f"refused after shutdown began {refused}; 2xx answers missing from the store: lost = {lost}"
    )


def _stall(address: tuple[str, int], count: int) -> list[socket.socket]:
    stalled = []
    for _ in range(count):
        sock = socket.create_connection(address)
        head = f"POST {SIGN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head.encode() + b'Content-Length: 5000\r\n\r\n{"hook":1}')
        stalled.append(sock)
    return stalled


def _latencies(base: str, calls: int) -> list[float]:
    session = requests.Session()
    return [_call(session, base, 10_000 + index)[2] * 1000 for index in range(calls)]


def _nginx(upstream_port: int, folder: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = "/usr/sbin/nginx"
    if not Path(binary).exists():
        return None
    port = _free_port()
    template = (REPO / "examples" / "nginx" / "lbp-imaging-cds.conf").read_text()
    server_block = template.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace(
        "server lbp-imaging-cds:8080;", f"server 127.0.0.1:{upstream_port};"
    )
    (folder / "nginx.conf").write_text(
        "worker_processes 1; pid "
        + str(folder / "nginx.pid")
        + "; error_log "
        + str(folder / "error.log")
        + ";\n"
        "events { worker_connections 1024; }\n"
        "http { access_log off; client_body_temp_path "
        + str(folder)
        + "; proxy_temp_path "
        + str(folder)
        + ";\n"
        + server_block
        + "\n}\n"
    )
    process = subprocess.Popen(
        [binary, "-g", "daemon off;", "-c", str(folder / "nginx.conf"), "-p", str(folder)]
    )
    time.sleep(0.5)
    return process, port


def drill_stalled(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, gunicorn(_database("sqlite", folder)) as (_, base):
        port = int(base.rsplit(":", 1)[1])
        quiet = _latencies(base, 10)
        stalled = _stall(("127.0.0.1", port), args.stalled)
        time.sleep(1)  # every stalled connection accepted and waiting on a request thread
        direct = _latencies(base, 30)
        for sock in stalled:
            sock.close()
        print(
            "stalled [gunicorn alone, 2x4 threads, body timeout 10 s]: "
            f"quiet p50 {statistics.median(quiet):.0f} ms; "
            f"with {args.stalled} stalled connections p50 {statistics.median(direct):.0f} ms, "
            f"max {max(direct):.0f} ms"
        )
        proxy = _nginx(port, Path(folder))
        if proxy is None:
            print("stalled [behind nginx]: nginx not installed (apt-get install nginx-light), skipped")
            return
        process, proxy_port = proxy
        try:
            proxied = f"http://127.0.0.1:{proxy_port}"
            quiet = _latencies(proxied, 10)
            stalled = _stall(("127.0.0.1", proxy_port), args.stalled)
            time.sleep(1)
            behind = _latencies(proxied, 30)
            for sock in stalled:
                sock.close()
            print(
                f"stalled [behind nginx, request buffering]: quiet p50 {statistics.median(quiet):.0f} ms; "
                f"with {args.stalled} stalled connections p50 {statistics.median(behind):.0f} ms, "
                f"max {max(behind):.0f} ms"
            )
        finally:
            process.terminate()
            process.wait(timeout=10)


def drill_soak(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        gunicorn(_database(args.database, folder)) as (master, base),
    ):
        started = time.monotonic()
        saturation = _burst(base, 400, args.connections)
        rate = len(saturation) / (time.monotonic() - started)
        target = rate * 0.8
        rss_before = {pid: _rss_kib(pid) for pid in _workers(master.pid)}
        latencies: list[float] = []
        errors = 0
        session = requests.Session()
        lock = threading.Lock()
        end = time.monotonic() + args.seconds
        interval = args.connections / target

        def worker(offset: int) -> None:
            nonlocal errors
            local = requests.Session()
            index = offset
            next_at = time.monotonic()
            while time.monotonic() < end:
                status, _, elapsed = _call(local, base, 100_000 + index)
                with lock:
                    latencies.append(elapsed * 1000)
                    errors += status != 200
                index += args.connections
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(args.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        session.close()
        rss_after = {pid: _rss_kib(pid) for pid in _workers(master.pid)}
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"soak [{args.database}]: saturation {rate:.0f} calls/s, soak at {target:.0f}/s "
            f"for {args.seconds} s: {len(latencies)} calls, errors {errors}, "
            f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms; "
            f"worker RSS before {sorted(v // 1024 for v in rss_before.values())} MiB, "
            f"after {sorted(v // 1024 for v in rss_after.values())} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("drill", choices=["kill", "sigterm", "stalled", "soak"])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    {"kill": drill_kill, "sigterm": drill_sigterm, "stalled": drill_stalled, "soak": drill_soak}[args.drill](
        args
    )


if __name__ == "__main__":
    main()
