"""The demo room's own endpoints: absent unless CDS_DEMO=true (and then only with auth off), and every bad
request a clear 4xx naming what is wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.config import ConfigError


def test_the_demo_is_absent_unless_turned_on(client: FlaskClient):
    for path in ("/demo", "/demo/api/config", "/demo/api/patients", "/demo/fhir/Patient/demo-acute"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not-found"


def test_the_demo_refuses_to_start_with_authentication_on(settings_overrides, tmp_path):
    with pytest.raises(ConfigError, match="CDS_DEMO=true needs CDS_AUTH=disabled"):
        create_app(
            {**settings_overrides, "demo": True, "auth": "required", "clients_file": str(tmp_path / "x")}
        )


def test_the_page_is_served_with_a_strict_content_security_policy(demo: FlaskClient):
    response = demo.get("/demo")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    plain = FlaskClient(demo.application, demo.application.response_class)  # the spec says bytes of any kind
    for name, mimetype in (
        ("demo.js", "text/javascript"),
        ("markdown.js", "text/javascript"),
        ("demo.css", "text/css"),
    ):
        static = plain.get(f"/demo/static/{name}")
        assert static.status_code == 200
        assert static.mimetype == mimetype
        assert "Content-Security-Policy" in static.headers
    assert "cdn" not in response.get_data(as_text=True).lower()


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("patient=nobody&procedure=xr-lumbar", 404, "no sample patient 'nobody'"),
        ("patient=demo-acute&procedure=pet-ct", 400, "unknown order 'pet-ct'; the demo orders xr-lumbar"),
        ("patient=demo-acute", 400, "unknown order ''"),
        ("patient=demo-acute&procedure=xr-lumbar&reason=headache", 400, "unknown reason 'headache'"),
        ("patient=demo-acute&procedure=xr-lumbar&n=0", 400, "n must be an order number"),
        ("patient=demo-acute&procedure=xr-lumbar&n=1x", 400, "n must be an order number"),
    ],
)
def test_a_bad_draft_order_request_is_a_clear_4xx(demo: FlaskClient, query, status, words):
    response = demo.get(f"/demo/api/draft-order?{query}")
    assert response.status_code == status
    assert words in response.get_json()["message"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/demo/fhir/Patient/nobody", 404, "Patient/nobody is not a sample resource"),
        ("/demo/fhir/Condition", 400, "searches need a patient parameter"),
        ("/demo/fhir/Practitioner/demo-clinician", 404, "does not serve Practitioner"),
    ],
)
def test_the_demo_fhir_server_answers_bad_reads_with_an_operation_outcome(
    demo: FlaskClient, path, status, words
):
    response = demo.get(path)
    assert response.status_code == status
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]


def test_a_search_for_an_unknown_patient_is_an_empty_searchset(demo: FlaskClient):
    bundle = demo.get("/demo/fhir/Condition?patient=nobody").get_json()
    assert bundle == {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}


def test_the_observation_search_honours_the_templates_codes(demo: FlaskClient):
    everything = demo.get("/demo/fhir/Observation?patient=demo-fever").get_json()
    temperatures = demo.get(
        "/demo/fhir/Observation?patient=demo-fever&code=http://loinc.org|8310-5"
    ).get_json()
    assert everything["total"] > temperatures["total"] == 1
    assert temperatures["entry"][0]["resource"]["valueQuantity"]["value"] == 38.6


def test_an_unknown_static_file_is_a_404(demo: FlaskClient, make_client: Callable[..., FlaskClient]):
    for name in ("..%2Fapp.py", "index.html.bak", "secrets.js"):
        response = demo.get(f"/demo/static/{name}")
        assert response.status_code == 404
