"""openapi.yaml itself: a valid OpenAPI 3.1 document that documents every error each operation can give."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from fhir_mappings.model import RED_FLAG_IDS
from tests.support.contract import component_validator, schema_errors, spec_document

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The error statuses each operation can produce, and why:
# 400 bad body or parameters; 401 JWT (CDS endpoints, /evaluate) or admin token; 403 a fhirServer the
# client may not use; 404 unknown service id, unknown record, or admin endpoints switched off; 412 patient
# data neither prefetched nor fetchable; 413 body over CDS_MAX_BODY_BYTES; 415 body not JSON; 500 always.
EXPECTED_ERROR_STATUSES: dict[tuple[str, str], set[str]] = {
    ("get", "/healthz"): {"500"},
    ("get", "/readyz"): {"500"},
    ("get", "/metrics"): {"401", "404", "500"},
    ("get", "/cds-services"): {"401", "500"},
    ("post", "/cds-services/lbp-imaging-order-select"): {"400", "401", "403", "412", "413", "415", "500"},
    ("post", "/cds-services/lbp-imaging-order-sign"): {"400", "401", "403", "412", "413", "415", "500"},
    ("post", "/cds-services/{serviceId}"): {"404", "500"},  # any other id
    ("post", "/cds-services/{serviceId}/feedback"): {"400", "401", "404", "413", "415", "500"},
    ("post", "/evaluate"): {"400", "401", "413", "415", "422", "500"},
    ("get", "/assessments/{assessmentId}"): {"400", "401", "404", "500"},
    ("get", "/reports/summary"): {"400", "401", "404", "500"},
    # The questions room: 403 a token refused, 404 no questions offered, 409 answered already or the rules
    # changed, 422 a response for another Questionnaire or patient.
    ("get", "/questionnaires/lbp-red-flags"): {"500"},
    ("get", "/questions/{assessmentId}"): {"403", "404", "409", "500"},
    ("post", "/questions/{assessmentId}"): {"400", "403", "404", "409", "413", "415", "422", "500"},
    ("get", "/questions/{assessmentId}/questionnaire"): {"403", "404", "409", "500"},
    ("get", "/questions/static/{name}"): {"404", "500"},
    # SMART launch of the questions page: 400 a bad launch or callback, 403 not trusted or not vouched for,
    # 404 SMART off or no questions, 409 answered already, 502 the EHR's configuration or token unusable.
    ("get", "/questions/smart/launch"): {"400", "403", "404", "500", "502"},
    ("get", "/questions/smart/callback"): {"400", "403", "404", "409", "500", "502"},
    # The demo room (CDS_DEMO=true only; 404 otherwise).
    ("get", "/demo"): {"404", "500"},
    ("get", "/demo/static/{name}"): {"404", "500"},
    ("get", "/demo/api/config"): {"404", "500"},
    ("get", "/demo/api/patients"): {"404", "500"},
    ("get", "/demo/api/draft-order"): {"400", "404", "500"},
    ("get", "/demo/fhir/{resourceType}"): {"400", "404", "500", "502"},
    ("get", "/demo/fhir/{resourceType}/{resourceId}"): {"400", "404", "500", "502"},
}
# The questions page answers a browser: its refusals are HTML pages saying why (the form's POST answers
# both, JSON to a QuestionnaireResponse and HTML to the form).
HTML_PAGE_ERRORS = {
    ("get", "/questions/{assessmentId}"),
    ("get", "/questions/smart/launch"),
    ("get", "/questions/smart/callback"),
}
# Their success is a redirect: on to the EHR's authorize endpoint, and back to the questions page.
REDIRECTS = {("get", "/questions/smart/launch"): "302", ("get", "/questions/smart/callback"): "303"}
CORS_PATHS = {
    "/cds-services",
    "/cds-services/lbp-imaging-order-select",
    "/cds-services/lbp-imaging-order-sign",
    "/cds-services/{serviceId}",
    "/cds-services/{serviceId}/feedback",
    "/evaluate",
}


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): item[method]
        for path, item in spec_document()["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    reference = node.get("$ref")
    if reference is None:
        return node
    target: Any = spec_document()
    for part in reference.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target)


def test_the_spec_is_a_valid_openapi_3_1_document() -> None:
    document = spec_document()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises with the first problem


def test_the_validator_rejects_a_broken_spec() -> None:
    """The check above can fail: a response without a description is not OpenAPI."""
    document = spec_document()
    broken = {**document, "paths": {"/healthz": {"get": {"responses": {"200": {}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_endpoint_of_the_service_is_documented() -> None:
    documented = {key for key in _operations() if key[0] != "options"}
    assert documented == set(EXPECTED_ERROR_STATUSES)


@pytest.mark.parametrize(("operation", "statuses"), sorted(EXPECTED_ERROR_STATUSES.items()))
def test_each_operation_documents_the_errors_it_can_produce(
    operation: tuple[str, str], statuses: set[str]
) -> None:
    responses = _operations()[operation]["responses"]
    missing = statuses - set(responses)
    assert not missing, f"{operation} does not document {sorted(missing)}"
    success = REDIRECTS.get(operation, "200")
    assert success in responses or operation == ("post", "/cds-services/{serviceId}")


@pytest.mark.parametrize("operation", sorted(EXPECTED_ERROR_STATUSES))
def test_every_error_answer_is_a_json_error_body(operation: tuple[str, str]) -> None:
    for status, response in _operations()[operation]["responses"].items():
        if not status.startswith(("4", "5")) or status == "503":
            continue
        content = _resolve(response)["content"]
        if operation in HTML_PAGE_ERRORS and status != "500":
            assert set(content) == {"text/html"}, f"{operation} {status}"
            continue
        schema = content["application/json"]["schema"]
        # anyOf: the demo FHIR server's OperationOutcome, or the service's own error body.
        parts = schema.get("allOf", []) + schema.get("anyOf", [])
        refs = [schema.get("$ref")] + [part.get("$ref") for part in parts]
        expected = (
            "#/components/schemas/UnauthorizedBody" if status == "401" else "#/components/schemas/ErrorBody"
        )
        assert expected in refs, f"{operation} {status} does not answer with {expected}"


def test_the_401_body_is_exactly_error_unauthorized() -> None:
    validator = component_validator("UnauthorizedBody")
    assert schema_errors(validator, {"error": "unauthorized"}) == []
    assert schema_errors(validator, {"error": "unauthorized", "message": "expired"}) != []
    assert schema_errors(validator, {"error": "forbidden"}) != []


def test_405_and_unknown_paths_have_documented_answers() -> None:
    responses = spec_document()["components"]["responses"]
    assert "MethodNotAllowed" in responses
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    assert "PathNotFound" in responses


@pytest.mark.parametrize("path", sorted(CORS_PATHS))
def test_browser_facing_paths_document_the_cors_preflight(path: str) -> None:
    operation = spec_document()["paths"][path]["options"]
    assert operation["security"] == []
    assert "200" in operation["responses"]


def test_security_schemes_cover_cds_clients_and_admins() -> None:
    document = spec_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["cdsHooksJwt"] == {
        **schemes["cdsHooksJwt"],
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert schemes["adminToken"]["scheme"] == "bearer"
    assert document["security"] == [{"cdsHooksJwt": []}]
    operations = _operations()
    assert operations[("get", "/healthz")]["security"] == []
    for admin in (("get", "/assessments/{assessmentId}"), ("get", "/reports/summary")):
        assert operations[admin]["security"] == [{"adminToken": []}]


def test_red_flag_ids_match_the_findings_contract() -> None:
    """The contract's red-flag enum and fhir_mappings.model must not drift apart."""
    enum = spec_document()["components"]["schemas"]["RedFlagId"]["enum"]
    assert sorted(enum) == sorted(RED_FLAG_IDS)


def test_every_schema_example_validates_against_its_schema() -> None:
    checked = 0
    for name, schema in spec_document()["components"]["schemas"].items():
        for example in schema.get("examples", []):
            assert schema_errors(component_validator(name), example) == [], name
            checked += 1
    assert checked > 0
