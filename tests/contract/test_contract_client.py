"""ContractClient catches what openapi.yaml forbids, and lets through what it allows.

The client is exercised over a small real Flask app whose routes answer whatever each test asks for,
so each kind of drift (status, content type, body shape, card rules, undocumented paths and methods)
is shown to fail, and conforming answers to pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, jsonify

from tests.contract.examples import load_example
from tests.support.contract import ContractClient, ContractViolation

ERROR_404 = {"error": "not-found", "message": "no such endpoint"}
ERROR_405 = {"error": "method-not-allowed", "message": "method not allowed on this endpoint"}


class Answers:
    """What the test app's routes answer next: (status, JSON body or raw text, headers)."""

    def __init__(self) -> None:
        self.by_route: dict[str, tuple[int, Any, dict[str, str]]] = {}

    def set(self, route: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.by_route[route] = (status, body, headers or {})

    def respond(self, route: str) -> Response:
        status, body, headers = self.by_route[route]
        response = Response(body, mimetype="text/html") if isinstance(body, str) else jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        return response


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def client(answers: Answers) -> Iterator[ContractClient]:
    app = Flask("contract-client-test")
    app.test_client_class = ContractClient

    @app.get("/healthz")
    def healthz() -> Response:
        return answers.respond("healthz")

    @app.get("/cds-services")
    def discovery() -> Response:
        return answers.respond("discovery")

    @app.post("/cds-services/<service_id>")
    def service(service_id: str) -> Response:
        return answers.respond("service")

    @app.post("/cds-services/<service_id>/feedback")
    def feedback(service_id: str) -> Response:
        return answers.respond("feedback")

    @app.post("/evaluate")
    def evaluate() -> Response:
        return answers.respond("evaluate")

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[Response, int]:
        return jsonify(answers.by_route.get("404", (0, ERROR_404, {}))[1]), 404

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> tuple[Response, int, dict[str, str]]:
        return jsonify(ERROR_405), 405, {"Allow": "GET, HEAD, OPTIONS"}

    with app.test_client() as test_client:
        assert isinstance(test_client, ContractClient)
        yield test_client


def hook_request() -> dict[str, Any]:
    request: dict[str, Any] = load_example("pama_scenario-01-outbound-request")
    return request


def test_a_conforming_health_answer_passes(client: ContractClient, answers: Answers) -> None:
    answers.set("healthz", 200, {"status": "ok"})
    assert client.get("/healthz").status_code == 200


def test_an_unexpected_field_is_caught(client: ContractClient, answers: Answers) -> None:
    answers.set("healthz", 200, {"status": "ok", "uptime": 12})
    with pytest.raises(
        ContractViolation, match=r"GET /healthz -> 200 breaks openapi.yaml:\n.*'uptime' was unexpected"
    ):
        client.get("/healthz")


def test_an_undocumented_status_is_caught(client: ContractClient, answers: Answers) -> None:
    answers.set("healthz", 418, {"error": "invalid-request", "message": "teapot"})
    with pytest.raises(ContractViolation, match="Unknown response http status: 418"):
        client.get("/healthz")


def test_a_wrong_content_type_is_caught(client: ContractClient, answers: Answers) -> None:
    answers.set("discovery", 200, "<html>services</html>")
    with pytest.raises(ContractViolation, match="text/html"):
        client.get("/cds-services")


def test_discovery_from_the_spec_passes(client: ContractClient, answers: Answers) -> None:
    answers.set("discovery", 200, load_example("spec201_block00"))
    assert client.get("/cds-services").status_code == 200


def test_this_services_card_answer_passes(client: ContractClient, answers: Answers) -> None:
    answers.set("service", 200, load_example("lbp_hook_response"))
    response = client.post("/cds-services/lbp-imaging-order-sign", json=hook_request())
    assert response.get_json()["cards"][0]["indicator"] == "warning"


def test_an_empty_card_answer_passes(client: ContractClient, answers: Answers) -> None:
    answers.set("service", 200, {"cards": []})
    assert client.post("/cds-services/lbp-imaging-order-select", json=hook_request()).status_code == 200


def test_a_card_missing_the_extension_is_caught(client: ContractClient, answers: Answers) -> None:
    answers.set("service", 200, load_example("spec201_block16"))
    with pytest.raises(ContractViolation, match="'extension' is a required property"):
        client.post("/cds-services/lbp-imaging-order-sign", json=hook_request())


def test_a_card_rule_the_schema_cannot_express_is_caught(client: ContractClient, answers: Answers) -> None:
    body = load_example("lbp_hook_response")
    body["cards"][0]["suggestions"][1]["uuid"] = body["cards"][0]["uuid"]
    answers.set("service", 200, body)
    with pytest.raises(
        ContractViolation, match=r"card rule: \$\.cards\[0\]\.suggestions\[1\]\.uuid: uuid .* is already used"
    ):
        client.post("/cds-services/lbp-imaging-order-sign", json=hook_request())


def test_a_system_action_without_description_is_caught(client: ContractClient, answers: Answers) -> None:
    body = load_example("lbp_hook_response")
    del body["systemActions"][0]["description"]
    answers.set("service", 200, body)
    with pytest.raises(ContractViolation) as caught:
        client.post("/cds-services/lbp-imaging-order-sign", json=hook_request())
    assert "'description' is a required property" in str(caught.value)
    assert "card rule: $.systemActions[0].description: every action needs a description" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            400,
            {"error": "invalid-request", "message": "'hookInstance' is required", "location": "hookInstance"},
        ),
        (400, {"error": "invalid-json", "message": "request body is not valid JSON at line 1, column 2"}),
        (401, {"error": "unauthorized"}),
        (404, {"error": "unknown-service", "message": "no CDS service 'x'"}),
        (412, {"error": "precondition-failed", "message": "prefetch 'patient' missing and no fhirServer"}),
        (413, {"error": "payload-too-large", "message": "request body is larger than 5242880 bytes"}),
        (415, {"error": "unsupported-media-type", "message": "Content-Type must be application/json"}),
        (500, {"error": "internal-error", "message": "internal error; the incident was logged"}),
    ],
)
def test_documented_error_answers_pass(
    client: ContractClient, answers: Answers, status: int, body: dict[str, Any]
) -> None:
    answers.set("service", status, body, {"WWW-Authenticate": "Bearer"} if status == 401 else None)
    path = "/cds-services/x" if status == 404 else "/cds-services/lbp-imaging-order-sign"
    assert client.post(path, json=hook_request()).status_code == status


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (401, {"error": "unauthorized", "message": "token expired"}, "'message' was unexpected"),
        (400, {"error": "bad", "message": "x"}, "'bad' is not one of"),
        (400, {"error": "invalid-request"}, "'message' is a required property"),
        (412, {"error": "invalid-request", "message": "x"}, "'precondition-failed' was expected"),
        (500, {"error": "internal-error", "message": "Traceback", "trace": "..."}, "'trace' was unexpected"),
        (400, {"error": "invalid-request", "message": "x", "location": ""}, "should be non-empty"),
    ],
)
def test_malformed_error_answers_are_caught(
    client: ContractClient, answers: Answers, status: int, body: dict[str, Any], problem: str
) -> None:
    answers.set("service", status, body)
    with pytest.raises(ContractViolation, match=problem):
        client.post("/cds-services/lbp-imaging-order-sign", json=hook_request())


def test_a_feedback_receipt_passes_and_a_wrong_one_is_caught(
    client: ContractClient, answers: Answers
) -> None:
    answers.set("feedback", 200, {"received": 2, "linked": 1, "unknownCards": ["abc"]})
    assert client.post("/cds-services/x/feedback", json=load_example("spec201_block18")).status_code == 200
    answers.set("feedback", 200, {"received": 2, "linked": 1})
    with pytest.raises(ContractViolation, match="'unknownCards' is a required property"):
        client.post("/cds-services/x/feedback", json=load_example("spec201_block18"))


def test_an_unknown_path_must_answer_a_json_404(client: ContractClient, answers: Answers) -> None:
    assert client.get("/no/such/thing").status_code == 404
    answers.set("404", 404, {"error": "not-found"})
    with pytest.raises(ContractViolation, match="'message' is a required property"):
        client.get("/no/such/thing")


def test_an_undocumented_method_must_answer_405_with_allow(client: ContractClient) -> None:
    assert client.delete("/healthz").status_code == 405


def test_flask_automatic_options_and_head_pass(client: ContractClient, answers: Answers) -> None:
    answers.set("healthz", 200, {"status": "ok"})
    assert client.options("/healthz").status_code == 200
    head = client.head("/healthz")
    assert (head.status_code, head.get_data()) == (200, b"")


def test_documented_cors_preflight_passes(client: ContractClient) -> None:
    assert client.options("/cds-services/x").status_code == 200


def test_an_evaluate_answer_passes_and_one_missing_a_part_is_caught(
    client: ContractClient, answers: Answers
) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection"}
    answer = load_example("lbp_evaluate_answer")
    answers.set("evaluate", 200, answer)
    assert client.post("/evaluate?asOf=2024-03-15", json=bundle).status_code == 200
    del answer["dataGaps"]
    answers.set("evaluate", 200, answer)
    with pytest.raises(ContractViolation, match="'dataGaps' is a required property"):
        client.post("/evaluate", json=bundle)
