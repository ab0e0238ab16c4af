"""Per ordering clinician, without storing who they are: the v2 schema step, the keyed hash of CDS Hooks
`context.userId` written by the hook, and `orderer=` reports (API and store), on both databases."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import String, inspect, select, text

from service.http.context import EXTENSION_KEY
from service.store import ReportParameterError, Store
from service.store.schema import assessments, metadata, schema_migrations
from tests.store.builders import (
    START,
    accepted,
    all_text_in_database,
    assessment,
    database_connection,
    hook_request,
    order,
    overridden,
)

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIGN = "lbp-imaging-order-sign"
ISS = "https://ehr.example.org"  # the client of the builders' assessments
FEEDBACK = f"/cds-services/{SIGN}/feedback"
EVALUATE_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "evaluate-bundle.json"
# Distinctive ids, so that finding them anywhere in the database would mean they were stored in clear.
ALVAREZ = "Practitioner/dr-alvarez-7734"
BAKKER = "PractitionerRole/role-bakker-5521"
PERIOD = "from=2026-03-01&to=2026-03-01"  # the day of the tests' clock (tests/store/builders.START)

# The assessments table as release 1 (schema version 1) created it.
V1_ASSESSMENT_COLUMNS = {
    "assessment_id",
    "created_at",
    "service_id",
    "hook_instance",
    "client_iss",
    "patient_key",
    "variants",
    "red_flags",
    "unchecked_red_flags",
    "evidence",
    "data_gaps",
    "urgent",
    "rules_version",
    "latency_ms",
}


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**settings_overrides, "admin_token": ADMIN_TOKEN, "patient_hash_key": "hash-key-for-tests"}


# -- the keyed hash --------------------------------------------------------------------------------


def test_the_orderer_key_groups_clinicians_and_never_matches_a_patient_key(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    key = store.orderer_key(ALVAREZ)
    assert key is not None
    assert len(key) == 64
    assert store.orderer_key(f"  {ALVAREZ} ") == key  # however it is typed into a report request
    assert store.orderer_key(BAKKER) != key
    assert store.patient_key(ALVAREZ) != key  # a separate derivation under the one secret
    assert open_store(patient_hash_key="another-key").orderer_key(ALVAREZ) != key
    assert store.orderer_key(None) is None
    assert store.orderer_key("  ") is None
    assert open_store(patient_hash_key=None).orderer_key(ALVAREZ) is None


def test_a_store_report_per_orderer_counts_only_that_clinicians_assessments(store: Store) -> None:
    store.save_assessment(assessment(1, orderer_reference=ALVAREZ, orders=(order(1), order(10))))
    store.save_assessment(assessment(2, orderer_reference=BAKKER))
    store.save_assessment(assessment(3, orderer_reference=None))  # /evaluate: nobody
    store.save_feedback(SIGN, [accepted("card-1", START), overridden("card-3", START)], client_iss=None)
    end = START + timedelta(days=1)

    mine = store.summary(START, end, orderer=ALVAREZ)
    everyone = store.summary(START, end)

    assert (mine["orderer"], mine["assessments"], mine["orders"]) == (ALVAREZ, 1, 2)
    assert "feedbackOnUnknownCards" not in mine  # cannot be attributed to a clinician
    assert (everyone["assessments"], everyone["orders"]) == (3, 4)
    assert "orderer" not in everyone
    with pytest.raises(ReportParameterError, match=r"context\.userId") as blank:
        store.summary(START, end, orderer=" ")
    assert blank.value.parameter == "orderer"


# -- the schema step -------------------------------------------------------------------------------


def _make_it_a_version_1_database(database_url: str) -> None:
    """Undo steps 2 and 3 by hand, leaving the tables, rows and version record release 1 would have."""
    with database_connection(database_url) as connection, connection.begin():
        connection.execute(text("DROP TABLE questionnaire_answers"))
        connection.execute(text("DROP TABLE question_links"))
        connection.execute(text("DROP INDEX ix_assessments_orderer_key"))
        connection.execute(text("ALTER TABLE assessments DROP COLUMN orderer_key"))
        connection.execute(text("DELETE FROM schema_migrations WHERE version > 1"))


def _assessment_columns(database_url: str) -> dict[str, Any]:
    with database_connection(database_url) as connection:
        return {column["name"]: column for column in inspect(connection).get_columns("assessments")}


def _version_1_rows(database_url: str) -> list[tuple[Any, ...]]:
    """Every assessment, by the columns release 1 had."""
    columns = [assessments.c[name] for name in sorted(V1_ASSESSMENT_COLUMNS)]
    with database_connection(database_url) as connection:
        rows = connection.execute(select(*columns).order_by(assessments.c.assessment_id))
        return [tuple(row) for row in rows]


def test_a_version_1_database_is_upgraded_and_keeps_its_rows(
    open_store: Callable[..., Store], database_url: str
) -> None:
    old = open_store()
    old.save_assessment(assessment(1, orders=(order(1), order(10))))
    old.save_assessment(assessment(2))
    old.save_feedback(SIGN, [overridden("card-1", START, "patient-preference")], client_iss=ISS)
    story = old.get_assessment("assessment-1")
    assert story is not None
    assert story["orders"][0]["feedback"][0]["overrideReason"]["code"] == "patient-preference"
    old.close()
    _make_it_a_version_1_database(database_url)
    assert set(_assessment_columns(database_url)) == V1_ASSESSMENT_COLUMNS
    before = _version_1_rows(database_url)
    assert len(before) == 2

    upgraded = open_store()

    with database_connection(database_url) as connection:
        versions = list(connection.execute(select(schema_migrations.c.version).order_by("version")).scalars())
        orderer_keys = list(
            connection.execute(
                select(assessments.c.orderer_key).order_by(assessments.c.assessment_id)
            ).scalars()
        )
        indexes = {index["name"] for index in inspect(connection).get_indexes("assessments")}
    assert versions == [1, 2, 3]
    column = _assessment_columns(database_url)["orderer_key"]
    assert isinstance(column["type"], String)
    assert column["type"].length == 64
    assert column["nullable"]
    assert set(_assessment_columns(database_url)) == {c.name for c in metadata.tables["assessments"].c}
    assert "ix_assessments_orderer_key" in indexes
    assert orderer_keys == [None, None]  # their orderer was never recorded
    assert _version_1_rows(database_url) == before
    assert upgraded.get_assessment("assessment-1") == story  # its whole story, feedback and all

    upgraded.save_assessment(assessment(3, orderer_reference=ALVAREZ))
    end = START + timedelta(days=1)
    assert upgraded.summary(START, end, orderer=ALVAREZ)["assessments"] == 1
    assert upgraded.summary(START, end)["assessments"] == 3


# -- through the hook and the admin API ------------------------------------------------------------


def _sign(client: FlaskClient, user_id: str, *, lumbar_xray_too: bool = False) -> list[dict[str, Any]]:
    answer = client.post(
        f"/cds-services/{SIGN}", json=hook_request(user_id=user_id, lumbar_xray_too=lumbar_xray_too)
    )
    assert answer.status_code == 200, answer.json
    cards: list[dict[str, Any]] = answer.json["cards"]  # type: ignore[index]
    assert cards
    return cards


def _accept(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": f"{card['uuid']}-suggestion"}],
        "outcomeTimestamp": "2026-03-01T10:00:00Z",
    }


def _override(card: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-03-01T10:00:00Z",
    }
    if reason:
        item["overrideReason"] = {
            "reason": {"system": "https://example.org/override", "code": reason, "display": reason}
        }
    return item


def _report(client: FlaskClient, orderer: str | None = None) -> dict[str, Any]:
    query = {"from": "2026-03-01", "to": "2026-03-01", **({"orderer": orderer} if orderer else {})}
    response = client.get("/reports/summary", query_string=query, headers=ADMIN)
    assert response.status_code == 200, response.json
    report: dict[str, Any] = response.json  # type: ignore[assignment]
    return report


def test_reports_per_ordering_clinician_count_exactly_their_assessments_and_feedback(
    app: Flask,
    client: FlaskClient,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alvarez = [_sign(client, ALVAREZ, lumbar_xray_too=True), _sign(client, ALVAREZ), _sign(client, ALVAREZ)]
    bakker = [_sign(client, BAKKER), _sign(client, BAKKER)]
    evaluated = client.post("/evaluate", json=json.loads(EVALUATE_EXAMPLE.read_text(encoding="utf-8")))
    assert evaluated.status_code == 200
    feedback = [
        _accept(alvarez[0][0]),
        _override(alvarez[0][1], "patient-preference"),
        _override(alvarez[1][0]),
        _accept(bakker[0][0]),
        _override({"uuid": "a-card-nobody-issued"}),
    ]
    assert client.post(FEEDBACK, json={"feedback": feedback}).json == {
        "received": 5,
        "linked": 4,
        "unknownCards": ["a-card-nobody-issued"],
    }

    mine, theirs = _report(client, ALVAREZ), _report(client, BAKKER)
    nobody, everyone = _report(client, "Practitioner/somebody-else"), _report(client)

    assert (mine["orderer"], mine["assessments"], mine["orders"]) == (ALVAREZ, 3, 4)
    assert mine["byModality"] == {"MRI": 3, "XR": 1}
    assert (mine["cards"]["shown"], mine["cards"]["withFeedback"]) == (sum(map(len, alvarez)), 3)
    assert (mine["cards"]["accepted"], mine["cards"]["overridden"]) == (1, 2)
    assert [(r["code"], r["count"]) for r in mine["overrideReasons"]] == [("patient-preference", 1)]
    assert mine["overridesWithoutReason"] == 1
    assert "feedbackOnUnknownCards" not in mine

    assert (theirs["orderer"], theirs["assessments"], theirs["orders"]) == (BAKKER, 2, 2)
    assert (theirs["cards"]["shown"], theirs["cards"]["withFeedback"]) == (sum(map(len, bakker)), 1)
    assert (theirs["cards"]["accepted"], theirs["cards"]["overridden"]) == (1, 0)
    assert theirs["overrideReasons"] == []
    assert theirs["overridesWithoutReason"] == 0

    assert (nobody["assessments"], nobody["orders"], nobody["cards"]["shown"]) == (0, 0, 0)
    assert (everyone["assessments"], everyone["byService"]) == (6, {SIGN: 5, "evaluate": 1})
    assert everyone["feedbackOnUnknownCards"] == 1
    assert "orderer" not in everyone
    assert not any(key for key in everyone if "rderer" in key)  # the committee report lists nobody

    # The assessments carry the keys: one per clinician, none for /evaluate.
    store: Store = app.extensions[EXTENSION_KEY].store
    with database_connection(database_url) as connection:
        keys = Counter(connection.execute(select(assessments.c.orderer_key)).scalars())
    assert keys == {store.orderer_key(ALVAREZ): 3, store.orderer_key(BAKKER): 2, None: 1}

    # Who ordered is nowhere in clear: not in any column of any row, not in the logs.
    stored = all_text_in_database(database_url)
    logged = "\n".join(repr(vars(record)) for record in caplog.records)  # messages and their fields
    assert "hookInstance" in logged or "hook_instance" in logged  # the request log was captured
    for clear in ("dr-alvarez-7734", "role-bakker-5521", "Practitioner/", "PractitionerRole/"):
        assert clear not in stored
        assert clear not in logged


def test_an_orderer_report_without_a_hash_key_is_400_and_says_why(
    make_client: Callable[..., FlaskClient], database_url: str
) -> None:
    client = make_client(patient_hash_key=None)
    _sign(client, ALVAREZ)  # still advised and stored, only without an orderer key

    refused = client.get(f"/reports/summary?{PERIOD}&orderer={ALVAREZ}", headers=ADMIN)

    assert refused.status_code == 400
    assert refused.json is not None
    assert refused.json["error"] == "invalid-request"
    assert refused.json["location"] == "orderer"
    assert "CDS_PATIENT_HASH_KEY" in refused.json["message"]
    assert _report(client)["assessments"] == 1  # the committee report needs no key
    with database_connection(database_url) as connection:
        assert list(connection.execute(select(assessments.c.orderer_key)).scalars()) == [None]
    assert "dr-alvarez-7734" not in all_text_in_database(database_url)


def test_a_blank_orderer_is_400(client: FlaskClient) -> None:
    refused = client.get(f"/reports/summary?{PERIOD}&orderer=", headers=ADMIN)
    assert refused.status_code == 400
    assert refused.json is not None
    assert refused.json["location"] == "orderer"
    assert "Practitioner/123" in refused.json["message"]
