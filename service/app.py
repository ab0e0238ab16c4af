"""The app factory. Nothing runs at import time; gunicorn calls `create_app()` once (preload_app)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service.config import load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides settings by field name (tests); the environment gives the rest."""
    settings = load_settings(overrides=config)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    return app
