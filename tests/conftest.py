"""Fixtures every test can build on: settings -> app -> client (responses checked against openapi.yaml)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.http.context import EXTENSION_KEY
from service.runtime import Runtime

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
# "Today" for every test that does not set its own clock.
TEST_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = TEST_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sequential_ids(prefix: int = 0) -> Callable[[], str]:
    """Deterministic UUIDs (00000000-0000-0000-0000-000000000001, ...) so answers are reproducible."""
    counter = itertools.count(1)
    return lambda: str(uuid.UUID(int=(prefix << 64) + next(counter)))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lbp-imaging-cds.db'}"


@pytest.fixture
def settings_overrides(database_url: str) -> dict[str, Any]:
    """Settings for the test app; a test overrides this fixture (or edits the dict) to change them."""
    return {
        "auth": "disabled",
        "database_url": database_url,
        "public_base_urls": ("http://localhost",),
        "log_level": "INFO",
    }


@pytest.fixture
def app(settings_overrides: dict[str, Any], clock: FixedClock) -> Iterator[Flask]:
    from tests.support.contract import ContractClient

    flask_app = create_app(settings_overrides, clock=clock, new_id=sequential_ids())
    flask_app.test_client_class = ContractClient
    yield flask_app
    runtime: Runtime = flask_app.extensions[EXTENSION_KEY]
    runtime.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_client(
    settings_overrides: dict[str, Any], clock: FixedClock
) -> Iterator[Callable[..., FlaskClient]]:
    """A client for an app built with some settings changed: `make_client(max_body_bytes=2048)`."""
    from tests.support.contract import ContractClient

    apps: list[Flask] = []

    def build(**changes: Any) -> FlaskClient:
        flask_app = create_app({**settings_overrides, **changes}, clock=clock, new_id=sequential_ids())
        flask_app.test_client_class = ContractClient
        apps.append(flask_app)
        return flask_app.test_client()

    yield build
    for flask_app in apps:
        flask_app.extensions[EXTENSION_KEY].close()
