"""Load the sample patients into a FHIR server, for the compose demo (a one-shot container) or by hand.

    python -m service.demo.seed --fhir-server http://hapi:8080/fhir [--wait-seconds 300] [--patients DIR]

Waits until the server answers `GET /metadata` (a CapabilityStatement), then POSTs each sample Bundle as a
FHIR transaction (PUT by id, so seeding twice changes nothing but the dates), dated to today. Exit
status: 0 loaded, 1 the server refused a Bundle or never came up, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import requests

from service.demo.patients import DEFAULT_FOLDER, transaction_bundles

_FHIR_JSON = "application/fhir+json"


class SeedError(RuntimeError):
    """The FHIR server did not come up or refused a Bundle; the message says which."""


def wait_for_server(
    base_url: str,
    *,
    wait_seconds: float,
    session: requests.Session,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    deadline = clock() + wait_seconds
    last = "no answer"
    while True:
        try:
            answer = session.get(f"{base_url}/metadata", headers={"Accept": _FHIR_JSON}, timeout=10)
            if answer.status_code == 200 and answer.json().get("resourceType") == "CapabilityStatement":
                return
            last = f"HTTP {answer.status_code}"
        except (requests.RequestException, ValueError) as error:
            last = type(error).__name__
        if clock() >= deadline:
            raise SeedError(f"{base_url}/metadata did not answer a CapabilityStatement in time ({last})")
        sleep(2.0)


def seed(
    base_url: str,
    *,
    folder: Path = DEFAULT_FOLDER,
    today: date | None = None,
    session: requests.Session | None = None,
    wait_seconds: float = 0.0,
) -> int:
    """Load every sample Bundle; returns how many resources the server took."""
    base_url = base_url.rstrip("/")
    session = session or requests.Session()
    wait_for_server(base_url, wait_seconds=wait_seconds, session=session)
    loaded = 0
    for bundle in transaction_bundles(folder, today or datetime.now(UTC).date()):
        answer = session.post(
            base_url, json=bundle, headers={"Content-Type": _FHIR_JSON, "Accept": _FHIR_JSON}, timeout=60
        )
        if answer.status_code != 200:
            raise SeedError(f"Bundle {bundle.get('id')}: the server answered HTTP {answer.status_code}")
        try:
            entries = answer.json().get("entry", [])
        except ValueError:
            raise SeedError(f"Bundle {bundle.get('id')}: the server's answer is not JSON") from None
        refused = [
            entry.get("response", {}).get("status", "?")
            for entry in entries
            if not str(entry.get("response", {}).get("status", "")).startswith(("200", "201"))
        ]
        if refused or len(entries) != len(bundle["entry"]):
            raise SeedError(
                f"Bundle {bundle.get('id')}: not every entry was stored ({refused or 'entries missing'})"
            )
        loaded += len(entries)
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.demo.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-server", required=True, help="the FHIR base URL, e.g. http://hapi:8080/fhir")
    parser.add_argument(
        "--wait-seconds", type=float, default=300.0, help="how long to wait for it to come up"
    )
    parser.add_argument("--patients", type=Path, default=DEFAULT_FOLDER, help="the sample patients folder")
    arguments = parser.parse_args(argv)
    try:
        count = seed(arguments.fhir_server, folder=arguments.patients, wait_seconds=arguments.wait_seconds)
    except SeedError as error:
        print(f"seeding failed: {error}", file=sys.stderr)
        return 1
    print(f"loaded {count} resources of the sample patients into {arguments.fhir_server}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
