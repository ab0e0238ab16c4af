"""docker-compose.yml, without a Docker engine: the compose-spec schema, and what the file promises.

The schema is the Compose Specification's own (compose-spec/compose-spec `schema/compose-spec.json`), as
vendored and kept current by the check-jsonschema package (`check_jsonschema/builtin_schemas/vendor/`).
"""

from __future__ import annotations

import copy
import json
import os
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from service.config import ENVIRONMENT
from tests.packaging.dockerfile import DOCKERFILE, REPOSITORY, healthcheck_command, instructions

COMPOSE_FILE = REPOSITORY / "docker-compose.yml"
VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*)|:\?(?P<required>[^}]*))?\}"
)
# What a deployment must choose itself: compose refuses to start without it.
DEMO_CHOICES = {"CDS_CLIENTS_FILE_ON_HOST": "./examples/clients.example.yaml"}


class UnsetRequiredVariable(ValueError):
    """Compose's `${NAME:?message}` with NAME unset: `docker compose` stops with the message."""


def compose_spec_schema() -> dict[str, Any]:
    spec = find_spec("check_jsonschema")
    if spec is None or spec.origin is None:
        missing = "check-jsonschema (requirements-dev.in) is not installed: it ships the compose-spec schema"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI must run this check
        pytest.skip(missing)
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def schema_problems(document: Any) -> list[str]:
    schema = compose_spec_schema()
    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """Compose's `${NAME}` / `${NAME:-default}` substitution, applied to every string in `value`."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            chosen = environment.get(match["name"])
            if chosen:
                return chosen
            if match["required"] is not None:
                raise UnsetRequiredVariable(f"{match['name']}: {match['required']}")
            return match["default"] or ""

        return VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    return value


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))  # anchors and `<<` merges resolved
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """The file as `docker compose` sees it with only the required choices set (the defaults)."""
    resolved: dict[str, Any] = interpolate(raw_compose, DEMO_CHOICES)
    return resolved


def test_the_compose_file_follows_the_compose_specification(raw_compose: dict[str, Any]) -> None:
    assert schema_problems(raw_compose) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "lbp-imaging-cds", "restart_policy"), "always"),
        (("services", "lbp-imaging-cds", "healthcheck", "interval_seconds"), 30),
        (("volumes", "lbp-data"), ["not", "a", "volume"]),
    ],
)
def test_the_schema_check_can_fail(raw_compose: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    broken = copy.deepcopy(raw_compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_problems(broken) != []


def test_the_service_builds_this_repository_and_serves_on_8080(compose: dict[str, Any]) -> None:
    service = compose["services"]["lbp-imaging-cds"]
    assert (REPOSITORY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["ports"] == ["8080:8080"]
    assert service["environment"]["PORT"] == "8080"
    assert "profiles" not in service, "the SQLite service is the default: `docker compose up` starts it"


def test_the_sqlite_database_lives_in_a_named_volume(compose: dict[str, Any]) -> None:
    service = compose["services"]["lbp-imaging-cds"]
    mounts = {mount["target"]: mount for mount in service["volumes"]}
    assert mounts["/data"]["type"] == "volume"
    assert mounts["/data"]["source"] in compose["volumes"]
    assert service["environment"]["DATABASE_URL"] == "sqlite:////data/lbp-imaging-cds.db"


def test_the_compose_healthcheck_is_the_images(compose: dict[str, Any]) -> None:
    image_check = healthcheck_command(instructions(DOCKERFILE.read_text(encoding="utf-8")))
    for name in ("lbp-imaging-cds", "lbp-imaging-cds-replicated"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test == ["CMD", *image_check], name


def test_every_variable_given_to_the_service_is_a_setting_it_reads(compose: dict[str, Any]) -> None:
    """A misspelt variable would be silently ignored by the service; catch it here."""
    gunicorn_config = (REPOSITORY / "gunicorn.conf.py").read_text(encoding="utf-8")
    gunicorn_variables = set(re.findall(r"os\.environ\.get\(\s*['\"]([A-Z_]+)['\"]", gunicorn_config))
    known = set(ENVIRONMENT) | gunicorn_variables
    for name in ("lbp-imaging-cds", "lbp-imaging-cds-replicated"):
        unknown = set(compose["services"][name]["environment"]) - known
        assert unknown == set(), f"{name}: {sorted(unknown)}"


def test_compose_refuses_to_start_without_a_chosen_clients_file(raw_compose: dict[str, Any]) -> None:
    """The example file trusts a key anyone can sign with: it is never a silent default."""
    with pytest.raises(UnsetRequiredVariable, match="CDS_CLIENTS_FILE_ON_HOST"):
        interpolate(raw_compose, {})


def test_authentication_is_on_by_default_with_a_mounted_clients_file(compose: dict[str, Any]) -> None:
    for name in ("lbp-imaging-cds", "lbp-imaging-cds-replicated"):
        service = compose["services"][name]
        environment = service["environment"]
        assert environment["CDS_AUTH"] == "required"
        clients = next(
            mount for mount in service["volumes"] if mount["target"] == environment["CDS_CLIENTS_FILE"]
        )
        assert clients["read_only"] is True
        assert (REPOSITORY / clients["source"]).is_file()


def test_settings_given_in_the_environment_win(raw_compose: dict[str, Any]) -> None:
    chosen = interpolate(
        raw_compose, {**DEMO_CHOICES, "CDS_AUTH": "disabled", "PORT": "9090", "LOG_LEVEL": "DEBUG"}
    )
    service = chosen["services"]["lbp-imaging-cds"]
    assert service["environment"]["CDS_AUTH"] == "disabled"
    assert service["environment"]["LOG_LEVEL"] == "DEBUG"
    assert service["ports"] == ["9090:8080"]


def test_containers_are_hardened(compose: dict[str, Any]) -> None:
    for name in ("lbp-imaging-cds", "lbp-imaging-cds-replicated"):
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert "/tmp" in service["tmpfs"]


def test_the_postgres_profile_runs_replicas_on_a_shared_database(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres, replicated = services["postgres"], services["lbp-imaging-cds-replicated"]
    assert postgres["profiles"] == ["postgres"]
    assert replicated["profiles"] == ["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?-[a-z]+", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert replicated["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert replicated["deploy"]["replicas"] >= 2
    database_url = replicated["environment"]["DATABASE_URL"]
    assert database_url.startswith("postgresql://")
    assert "@postgres:5432/" in database_url
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "", (
        "no default password: PostgreSQL refuses to start"
    )
    assert any(mount["source"] in compose["volumes"] for mount in postgres["volumes"])


def test_the_password_reaches_both_sides(raw_compose: dict[str, Any]) -> None:
    chosen = interpolate(raw_compose, {**DEMO_CHOICES, "POSTGRES_PASSWORD": "s3cret"})
    assert chosen["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert (
        ":s3cret@postgres:5432/"
        in chosen["services"]["lbp-imaging-cds-replicated"]["environment"]["DATABASE_URL"]
    )


def test_the_demo_profile_seeds_a_real_fhir_server_and_serves_the_page_from_it(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    hapi, seeder, demo = services["hapi"], services["demo-seeder"], services["lbp-imaging-cds-demo"]
    assert hapi["profiles"] == seeder["profiles"] == demo["profiles"] == ["demo"]
    assert re.fullmatch(r"hapiproject/hapi:v\d+\.\d+\.\d+(-\d+)?", hapi["image"]), "a pinned HAPI FHIR tag"
    server = "http://hapi:8080/fhir"
    assert seeder["command"][:4] == ["python", "-m", "service.demo.seed", "--fhir-server"]
    assert seeder["command"][4] == server
    assert seeder["image"] == services["lbp-imaging-cds"]["image"]  # the service's own image, no other
    assert seeder["restart"] == "no"
    environment = demo["environment"]
    assert environment["CDS_DEMO"] == "true"
    assert environment["CDS_AUTH"] == "disabled"
    assert environment["CDS_DEMO_FHIR_SERVER"] == server
    assert demo["depends_on"]["demo-seeder"]["condition"] == "service_completed_successfully"
    clients_mount = next(m for m in demo["volumes"] if m.get("target") == environment["CDS_CLIENTS_FILE"])
    clients = yaml.safe_load((REPOSITORY / clients_mount["source"]).read_text(encoding="utf-8"))
    assert [entry["fhir_servers"] for entry in clients["clients"]] == [[server]]
    assert "CDS_DEMO" not in services["lbp-imaging-cds"]["environment"], "the default service has no demo"
    published = {port.split(":")[0] for name in services for port in services[name].get("ports", [])}
    assert len(published) == sum(len(s.get("ports", [])) for s in services.values()), "a host port used twice"
