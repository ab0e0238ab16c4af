"""The app factory. Nothing runs at import time; gunicorn calls `create_app()` once (preload_app)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

from fhir_mappings import check_terminology
from service.cds.services import load_catalog
from service.config import ConfigError, Settings, load_settings
from service.fetch import PrefetchGatherer
from service.http import admin as admin_http
from service.http import demo as demo_http
from service.http import evaluate, health, hooks
from service.http import feedback as feedback_http
from service.http import questions as questions_http
from service.http import smart_launch as smart_launch_http
from service.http.context import EXTENSION_KEY
from service.http.errors import register_error_handlers
from service.http.security import init_security
from service.questions import QuestionCatalog, TokenSigner
from service.questions.smart import SmartLauncher
from service.rules import load_rules
from service.runtime import Clock, IdFactory, Runtime, new_uuid, utc_now
from service.security import ClientRegistry, JwtVerifier, configure_logging
from service.store import Store

logger = logging.getLogger("lbp.app")


def _client_registry(settings: Settings) -> ClientRegistry | None:
    if settings.clients_file is None:
        if settings.auth == "required":
            raise ConfigError(
                "CDS_AUTH is 'required' but CDS_CLIENTS_FILE is not set: name the file of trusted CDS "
                "clients (see examples/clients.example.yaml), or set CDS_AUTH=disabled for a local demo"
            )
        return None
    return ClientRegistry.load(settings.clients_file)


def _question_signer(settings: Settings) -> TokenSigner:
    lifetime = timedelta(minutes=settings.questions_link_minutes)
    try:
        return TokenSigner.from_setting(settings.questions_key, lifetime=lifetime)
    except ValueError as error:
        raise ConfigError(f"CDS_QUESTIONS_KEY: {error}") from None


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    new_id: IdFactory | None = None,
) -> Flask:
    """Build the app.

    `config` overrides settings by field name (tests); the environment gives the rest. `clock` and
    `new_id` are injected so answers are reproducible in tests.
    """
    settings = load_settings(overrides=config)
    configure_logging(settings.log_level)
    clock = clock or utc_now
    new_id = new_id or new_uuid

    check_terminology()  # value sets and criteria: a broken file fails start-up, not a request
    if settings.demo and settings.auth != "disabled":
        raise ConfigError(
            "CDS_DEMO=true needs CDS_AUTH=disabled: the demo page calls the hooks unsigned, as the CDS Hooks "
            "Sandbox does, so it must never run where real patients are"
        )
    clients = _client_registry(settings)
    signer = _question_signer(settings)
    smart = SmartLauncher.from_settings(settings, signer)  # before the store: a misset variable fails first
    store = Store.open(settings.database_url, patient_hash_key=settings.patient_hash_key, clock=clock)
    rules = load_rules()
    runtime = Runtime(
        settings=settings,
        clock=clock,
        new_id=new_id,
        catalog=load_catalog(),
        rules=rules,
        store=store,
        gatherer=PrefetchGatherer.from_settings(settings),
        clients=clients,
        questions=QuestionCatalog.from_rules(rules),
        question_signer=signer,
        smart=smart,
    )
    verifier = None
    if settings.auth == "required" and clients is not None:
        verifier = JwtVerifier(
            clients,
            store,
            audiences=settings.public_base_urls,
            leeway_seconds=settings.jwt_leeway_seconds,
            jwks_timeout_seconds=settings.jwks_fetch_timeout_seconds,
            clock=clock,
        )

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.url_map.merge_slashes = False  # `//x` is a JSON 404, not an HTML redirect
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the order cards are built in
    app.extensions[EXTENSION_KEY] = runtime
    register_error_handlers(app)
    init_security(app, settings=settings, verifier=verifier)
    for blueprint in (
        health.blueprint,
        hooks.blueprint,
        evaluate.blueprint,
        feedback_http.blueprint,
        admin_http.blueprint,
        questions_http.blueprint,
        smart_launch_http.blueprint,
    ):
        app.register_blueprint(blueprint)
    if settings.demo:
        app.register_blueprint(demo_http.blueprint)
        logger.warning("demo page ON at /demo (CDS_DEMO=true): synthetic patients only")
    logger.info(
        "service ready",
        extra={"auth": settings.auth, "database": store.dialect, "rules_version": runtime.rules.version},
    )
    return app
