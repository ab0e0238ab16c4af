"""A Flask test client that holds every response to `openapi.yaml` and the CDS Hooks card rules.

`app.test_client_class = ContractClient` makes every API test a contract test: a response whose
status, content type, headers or body the spec does not allow, or a CDS service answer that breaks a card
rule, fails the test with an AssertionError naming the violation.

What is checked for each response, from the request's method and path:
- a documented operation: the status is one the operation lists, and the content type, headers and body
  match that response (openapi-core, OpenAPI 3.1 / JSON Schema 2020-12); a 200 from
  `POST /cds-services/{id}` also passes `card_rule_violations`;
- a documented path with a method no operation lists: 405 with the error body and an `Allow` header
  (`components/responses/MethodNotAllowed`); Flask's automatic OPTIONS answer (200, no body) and HEAD
  (the GET operation's status, no body) are accepted;
- a path the spec does not know: 404 with the error body (`components/responses/PathNotFound`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request

from tests.support.cds_rules import card_rule_violations

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:lbp-imaging-cds:openapi"
CDS_SERVICE_CALL = re.compile(r"^/cds-services/[^/]+$")


class ContractViolation(AssertionError):
    """A response the contract does not allow."""


@functools.cache
def openapi_spec() -> OpenAPI:
    """The parsed and validated spec, loaded once per test session."""
    # FHIR resources are JSON under their own media type (the Questionnaire endpoints).
    config = Config(extra_media_type_deserializers={"application/fhir+json": json.loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


@functools.cache
def spec_document() -> dict[str, Any]:
    document = openapi_spec().spec.read_value()
    assert isinstance(document, dict)
    return document


@functools.cache
def _schema_registry() -> Registry[Any]:
    # Component schemas refer to each other as "#/components/schemas/..." inside the spec document.
    resource: Resource[Any] = DRAFT202012.create_resource(spec_document())
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


def component_validator(name: str) -> Draft202012Validator:
    """A JSON Schema validator for `components/schemas/<name>`, with formats checked."""
    return _validator_for(f"{SPEC_URI}#/components/schemas/{name}")


def response_schema_validator(response_name: str) -> Draft202012Validator:
    """A validator for the JSON body of `components/responses/<response_name>`."""
    pointer = f"{SPEC_URI}#/components/responses/{response_name}/content/application~1json/schema"
    return _validator_for(pointer)


def _validator_for(reference: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": reference},
        registry=_schema_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Each schema error as `"<json path>: <message>"`, deepest first, for readable failures."""
    errors = sorted(validator.iter_errors(instance), key=lambda error: -len(error.absolute_path))
    return [_describe_schema_error(error) for error in errors]


def _describe_schema_error(error: SchemaValidationError) -> str:
    leaves = list(error.context or [])
    if leaves:
        # allOf/oneOf/if-then: the branch errors say what is actually wrong.
        best = max(leaves, key=lambda leaf: len(leaf.absolute_path))
        return _describe_schema_error(best)
    return f"{error.json_path!s}: {error.message!s}"


class AnsweredRequest:
    """The request of an answered call, as openapi-core reads it: method, path, parameters; no body.

    openapi-core's werkzeug adapter reads the request body, which the app has already consumed (and
    Werkzeug then reports a disconnected client); response validation needs only where the call went.
    """

    def __init__(self, request: Request) -> None:
        self.host_url = request.host_url
        self.path = request.root_path + request.path
        self.method = request.method.lower()
        self.content_type = request.content_type or "application/octet-stream"
        self.body: bytes | None = None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.args), header=Headers(request.headers), cookie=request.cookies
        )

    @classmethod
    def of(cls, request: Request) -> AnsweredRequest:
        return cls(request)


def contract_violations(response: TestResponse) -> list[str]:
    """Everything in `response` (from the Flask test client) that the contract does not allow."""
    request = response.request
    method = request.method.upper()
    spec = openapi_spec()
    errors = list(spec.iter_response_errors(AnsweredRequest.of(request), WerkzeugOpenAPIResponse(response)))
    if (
        len(errors) == 1
        and isinstance(errors[0], PathNotFound)
        and not isinstance(errors[0], OperationNotFound)
    ):
        return _undocumented_answer(response, "PathNotFound", 404)
    if len(errors) == 1 and isinstance(errors[0], OperationNotFound):
        if method == "OPTIONS":
            return _automatic_options_violations(response)
        if method == "HEAD":
            return _head_violations(response)
        return _undocumented_answer(response, "MethodNotAllowed", 405, needs_header="Allow")
    violations = [_describe_openapi_error(error) for error in errors]
    if method == "POST" and response.status_code == 200 and CDS_SERVICE_CALL.match(request.path):
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            violations += [f"card rule: {rule}" for rule in card_rule_violations(body)]
    return violations


def _undocumented_answer(
    response: TestResponse, response_name: str, status: int, *, needs_header: str | None = None
) -> list[str]:
    where = "an undocumented path" if status == 404 else "a method the spec does not list for this path"
    if response.status_code != status:
        return [f"{where} must answer {status}, got {response.status_code}"]
    violations = _json_body_violations(response, response_schema_validator(response_name))
    if needs_header and not response.headers.get(needs_header):
        violations.append(f"a {status} answer needs the {needs_header} header")
    return violations


def _automatic_options_violations(response: TestResponse) -> list[str]:
    if response.status_code != 200 or response.get_data():
        status = response.status_code
        return [f"an OPTIONS answer on an undocumented operation must be 200 without a body, got {status}"]
    return []


def _head_violations(response: TestResponse) -> list[str]:
    violations = [] if not response.get_data() else ["a HEAD answer must have no body"]
    operation = spec_document()["paths"].get(_documented_path(response.request.path), {}).get("get")
    if operation is None:
        return [*violations, "HEAD is only answered on paths with a GET operation"]
    if str(response.status_code) not in operation["responses"]:
        violations.append(f"HEAD status {response.status_code} is not one GET documents")
    return violations


def _documented_path(path: str) -> str:
    templates: dict[str, Any] = spec_document()["paths"]
    for template in templates:
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return path


def _json_body_violations(response: TestResponse, validator: Draft202012Validator) -> list[str]:
    if response.mimetype != "application/json":
        return [f"content type must be application/json, got {response.mimetype!r}"]
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return ["body is not valid JSON"]
    return [f"body {problem}" for problem in schema_errors(validator, body)]


def _describe_openapi_error(error: Exception) -> str:
    causes = _causes(error)
    for cause in causes:
        if isinstance(cause, InvalidSchemaValue):
            details = [_describe_schema_error(item) for item in cause.schema_errors]
            return f"{type(error).__name__}: " + "; ".join(details)
    return " <- ".join(f"{type(cause).__name__}: {cause}" for cause in causes)


def _causes(error: BaseException) -> Iterable[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    return chain


class ContractClient(FlaskClient):
    """FlaskClient whose every response must satisfy openapi.yaml (and, for CDS answers, the card rules)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        violations = contract_violations(response)
        if violations:
            request = response.request
            summary = f"{request.method} {request.path} -> {response.status_code} breaks openapi.yaml:"
            raise ContractViolation("\n  ".join([summary, *violations]))
        return response
