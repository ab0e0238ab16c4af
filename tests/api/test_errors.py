"""Bad input gets a clear JSON error naming what is wrong and where; never a 500 or a stack trace."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.http.context import EXTENSION_KEY
from tests.api.test_hooks import SELECT, SIGN, example_request
from tests.support.http import json_of


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = request
        for key in parents:
            node = node[key]
        del node[last]

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = request
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _duplicate_id(request: dict[str, Any]) -> None:
    entries = request["context"]["draftOrders"]["entry"]
    entries.append(copy.deepcopy(entries[0]))


def _bad_entry(request: dict[str, Any]) -> None:
    entries = request["context"]["draftOrders"]["entry"]
    entries.extend([copy.deepcopy(entries[0]), {"resource": "not a resource"}])
    entries[1]["resource"]["id"] = "second"


# (change to the valid example request, expected location, words the message must hold)
BAD_REQUESTS = [
    pytest.param(_drop("hook"), "hook", "required", id="missing-hook"),
    pytest.param(_drop("hookInstance"), "hookInstance", "required", id="missing-hookInstance"),
    pytest.param(_drop("context"), "context", "required", id="missing-context"),
    pytest.param(_set("context", []), "context", "object", id="context-not-object"),
    pytest.param(_set("hook", "order-select"), "hook", "order-sign", id="hook-does-not-match-service"),
    pytest.param(_set("hookInstance", 42), "hookInstance", "string", id="hookInstance-not-string"),
    pytest.param(
        _set("hookInstance", "Jane Doe MRN 12345"), "hookInstance", "UUID", id="hookInstance-not-uuid"
    ),
    pytest.param(_drop("context.patientId"), "context.patientId", "required", id="missing-patientId"),
    pytest.param(_drop("context.draftOrders"), "context.draftOrders", "required", id="missing-draftOrders"),
    pytest.param(_set("context.draftOrders", "x"), "context.draftOrders", "object", id="draftOrders-string"),
    pytest.param(
        _set("context.draftOrders.entry", {}), "context.draftOrders.entry", "array", id="entry-not-array"
    ),
    pytest.param(
        _bad_entry, "context.draftOrders.entry[2].resource", "resourceType", id="entry-not-resource"
    ),
    pytest.param(
        _duplicate_id, "context.draftOrders.entry[1].resource.id", "another draft order", id="duplicate-ids"
    ),
    pytest.param(_set("prefetch", ["x"]), "prefetch", "object", id="prefetch-not-object"),
    pytest.param(
        _set("prefetch.conditions", "x"), "prefetch.conditions", "Bundle", id="prefetch-value-string"
    ),
    pytest.param(
        _set("fhirAuthorization", {"access_token": "t", "token_type": "Bearer"}),
        "fhirServer",
        "fhirServer",
        id="authorization-without-server",
    ),
]


@pytest.mark.parametrize(("change", "location", "words"), BAD_REQUESTS)
def test_malformed_hook_request_is_400_naming_the_element(
    client: FlaskClient, change: Callable[[dict[str, Any]], None], location: str, words: str
) -> None:
    request = example_request()
    change(request)
    response = client.post(SIGN, json=request)
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid-request"
    assert json_of(response)["location"] == location
    assert words in json_of(response)["message"]


def test_order_select_without_selections_is_400(client: FlaskClient) -> None:
    request = example_request()
    request["hook"] = "order-select"
    response = client.post(SELECT, json=request)
    assert response.status_code == 400
    assert json_of(response)["location"] == "context.selections"


def test_malformed_json_is_400_without_echoing_the_body(client: FlaskClient) -> None:
    response = client.post(
        SIGN, data=b'{"hook": "order-sign", "secret-value', content_type="application/json"
    )
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid-json"
    assert "secret-value" not in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [b"", b"[]", b"42", b'"text"'])
def test_body_that_is_not_an_object_is_400(client: FlaskClient, body: bytes) -> None:
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 400


def test_non_json_content_type_is_415(client: FlaskClient) -> None:
    response = client.post(SIGN, data=json.dumps(example_request()), content_type="text/plain")
    assert response.status_code == 415
    assert json_of(response)["error"] == "unsupported-media-type"


def test_unknown_service_is_404(client: FlaskClient) -> None:
    response = client.post("/cds-services/no-such-service", json=example_request())
    assert response.status_code == 404
    assert json_of(response)["error"] == "unknown-service"


def test_unknown_path_and_wrong_method_are_json(client: FlaskClient) -> None:
    assert json_of(client.get("/nowhere"))["error"] == "not-found"
    response = client.get(SIGN)
    assert response.status_code == 405
    assert json_of(response)["error"] == "method-not-allowed"


def test_body_over_the_limit_is_413(make_client: Callable[..., FlaskClient]) -> None:
    response = make_client(max_body_bytes=2048).post(SIGN, json=example_request())
    assert response.status_code == 413
    assert json_of(response)["error"] == "payload-too-large"
    assert "2048" in json_of(response)["message"]


def test_json_nested_deeper_than_the_limit_is_400(client: FlaskClient) -> None:
    request = example_request()
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    request["extension"] = deep
    response = client.post(SIGN, json=request)
    assert response.status_code == 400
    assert "nests deeper" in json_of(response)["message"]


def test_json_nested_past_the_interpreter_limit_is_400_not_500(client: FlaskClient) -> None:
    body = b'{"hook": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 400


def test_prefetch_bundle_over_the_resource_limit_is_413(make_client: Callable[..., FlaskClient]) -> None:
    limit = 50
    client = make_client(max_resources=limit)
    request = example_request()
    request["prefetch"]["conditions"]["entry"] = [
        {"resource": {"resourceType": "Condition", "id": str(i)}} for i in range(limit + 1)
    ]
    response = client.post(SIGN, json=request)
    assert response.status_code == 413
    assert json_of(response)["location"] == "prefetch.conditions.entry"


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01", "26-11-2026", "0001-01-01", "9999-12-31"])
def test_evaluate_with_a_bad_as_of_is_400(client: FlaskClient, as_of: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    response = client.post(f"/evaluate?asOf={as_of}", json=bundle)
    assert response.status_code == 400
    assert json_of(response)["location"] == "asOf"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"resourceType": "Patient", "id": "x"}, "Bundle.resourceType"),
        ({"resourceType": "Bundle", "entry": {"resource": {}}}, "Bundle.entry"),
        ({"resourceType": "Bundle", "entry": [{"resource": {"id": "x"}}]}, "Bundle.entry[0].resource"),
    ],
)
def test_evaluate_with_a_body_that_is_not_a_bundle_is_400(
    client: FlaskClient, body: dict[str, Any], location: str
) -> None:
    response = client.post("/evaluate", json=body)
    assert response.status_code == 400
    assert json_of(response)["location"] == location


def test_an_unavailable_audit_store_is_503_and_no_advice_is_given(app: Flask, client: FlaskClient) -> None:
    """No card leaves without its audit record: when the database cannot be written, the client is told
    to carry on without this service."""
    database = app.extensions[EXTENSION_KEY].settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:  # a broken database: the write fails
        connection.execute("DROP TABLE assessment_orders")
    response = client.post(SIGN, json=example_request())
    assert response.status_code == 503
    assert json_of(response)["error"] == "service-unavailable"
    assert "cards" not in json_of(response)


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("from=2026-01-01&to=9999-12-31", "to"),
        ("to=0001-01-01", "to"),
        ("from=0001-01-01T00:00:00+00:01", "from"),
    ],
)
def test_a_report_bound_past_the_calendar_is_400(
    make_client: Callable[..., FlaskClient], query: str, location: str
) -> None:
    client = make_client(admin_token="admin-token-for-this-test")
    headers = {"Authorization": "Bearer admin-token-for-this-test"}
    response = client.get(f"/reports/summary?{query}", headers=headers)
    assert response.status_code == 400
    assert json_of(response)["location"] == location


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:01"])
def test_a_feedback_time_past_the_calendar_in_utc_is_400(client: FlaskClient, timestamp: str) -> None:
    item = {
        "card": "00000000-0000-0000-0000-000000000000",
        "outcome": "overridden",
        "outcomeTimestamp": timestamp,
    }
    response = client.post(SIGN + "/feedback", json={"feedback": [item]})
    assert response.status_code == 400
    assert json_of(response)["location"] == "feedback[0].outcomeTimestamp"


@pytest.mark.parametrize(
    "body",
    [
        b'{"hook": "order-sign", "x": NaN}',
        b'{"hook": "order-sign", "x": -Infinity}',
        b'{"hook": "order-sign", "x": ' + b"1" * 5000 + b"}",
    ],
    ids=["nan", "infinity", "5000-digit-integer"],
)
@pytest.mark.parametrize("path", [SIGN, "/evaluate", SIGN + "/feedback"])
def test_json_that_python_reads_but_json_forbids_is_400(client: FlaskClient, path: str, body: bytes) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid-json"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SIGN, b'{"hook": "order-sign", "hookInstance": "\\ud800"}'),
        ("/evaluate", b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "\\ud800"}}]}'),
        (SIGN + "/feedback", b'{"feedback": [{"card": "x\\u0000", "outcome": "overridden"}]}'),
    ],
    ids=["lone-surrogate-hook", "lone-surrogate-evaluate", "nul-feedback"],
)
def test_strings_no_database_can_store_are_400(client: FlaskClient, path: str, body: bytes) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid-json"


def test_an_emoji_written_as_a_surrogate_pair_is_fine(client: FlaskClient) -> None:
    request = example_request()
    request["context"]["draftOrders"]["entry"][0]["resource"]["note"] = [{"text": "\U0001f600"}]
    body = json.dumps(request).encode()  # ensure_ascii: the emoji travels as \\ud83d\\ude00
    assert b"\\ud83d" in body
    assert client.post(SIGN, data=body, content_type="application/json").status_code == 200


def test_a_feedback_reason_system_must_be_an_absolute_uri(client: FlaskClient) -> None:
    item = {
        "card": "00000000-0000-0000-0000-000000000000",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T10:00:00Z",
        "overrideReason": {"reason": {"system": "not a uri", "code": "c"}},
    }
    response = client.post(SIGN + "/feedback", json={"feedback": [item]})
    assert response.status_code == 400
    assert json_of(response)["location"] == "feedback[0].overrideReason.reason.system"


def test_doubled_slashes_are_a_json_404_not_an_html_redirect(client: FlaskClient) -> None:
    response = client.post("/cds-services//lbp-imaging-order-sign/feedback", json={"feedback": []})
    assert response.status_code == 404
    assert json_of(response)["error"] == "not-found"


@pytest.mark.parametrize(("orders", "status"), [(20, 200), (21, 400)])
def test_more_lumbar_imaging_orders_than_a_clinician_signs_at_once_are_refused(
    client: FlaskClient, orders: int, status: int
) -> None:
    """An order-sign carries a handful; 4,000 orders made a 16.7 MB answer. Past 20, nothing is judged."""
    request = example_request()
    entries = request["context"]["draftOrders"]["entry"]
    template = entries[0]
    entries[:] = []
    for index in range(orders):
        entry = copy.deepcopy(template)
        entry["resource"]["id"] = f"order-{index}"
        entries.append(entry)
    response = client.post(SIGN, json=request)
    assert response.status_code == status
    if status == 400:
        assert json_of(response)["error"] == "too-many-orders"
        assert "at most 20" in json_of(response)["message"]
        assert json_of(response)["location"] == "context.draftOrders"
    else:
        assert len(json_of(response)["cards"]) == orders


def test_non_lumbar_draft_orders_do_not_count_toward_the_bound(client: FlaskClient) -> None:
    request = example_request()
    entries = request["context"]["draftOrders"]["entry"]
    for index in range(30):
        entries.append(
            {"resource": {"resourceType": "MedicationRequest", "id": f"med-{index}", "status": "draft"}}
        )
    assert client.post(SIGN, json=request).status_code == 200
