"""Prefetch token filling and FHIR base URL trust: pure functions, table-tested."""

from __future__ import annotations

import doctest

import pytest

import service.fetch.templates
import service.fetch.trust
from service.fetch import fill_template, normalise_server_url, trusted_server

CONTEXT = {"patientId": "123", "encounterId": "enc-9", "userId": "Practitioner/prac.7"}


@pytest.mark.parametrize("module", [service.fetch.templates, service.fetch.trust])
def test_the_documented_examples_hold(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0
    assert failures == 0


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/123"),
        (
            "Condition?patient={{context.patientId}}&category=problem-list-item",
            "Condition?patient=123&category=problem-list-item",
        ),
        ("Encounter/{{context.encounterId}}", "Encounter/enc-9"),
        ("Encounter/{{ context.encounterId }}", "Encounter/enc-9"),
        (
            "MedicationRequest?requester={{context.userId}}",
            "MedicationRequest?requester=Practitioner%2Fprac.7",
        ),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/prac.7"),
        (
            "Observation?patient={{context.patientId}}&code=http://loinc.org|8310-5",
            "Observation?patient=123&code=http://loinc.org|8310-5",
        ),
        ("Patient?_id={{context.patientId}},{{context.patientId}}", "Patient?_id=123,123"),
        ("Metadata", "Metadata"),
    ],
)
def test_tokens_are_filled(template, expected):
    assert fill_template(template, CONTEXT) == expected


@pytest.mark.parametrize(
    "template",
    [
        "PractitionerRole/{{userPractitionerRoleId}}",  # the user is a Practitioner, not a PractitionerRole
        "Patient/{{userPatientId}}",
        "RelatedPerson/{{userRelatedPersonId}}",
        "Condition?patient={{context.selections}}",  # not a CDS Hooks 2.0 prefetch token
        "Condition?patient={{context.draftOrders}}",
        "Condition?onset=gt{{today}}",
        "Condition?patient={{context.patientId}",  # malformed: left unfilled
    ],
)
def test_a_token_that_cannot_be_filled_gives_none(template):
    assert fill_template(template, CONTEXT) is None


@pytest.mark.parametrize(
    ("user_id", "token", "expected"),
    [
        ("PractitionerRole/r1", "userPractitionerRoleId", "r1"),
        ("Patient/p1", "userPatientId", "p1"),
        ("RelatedPerson/rp1", "userRelatedPersonId", "rp1"),
        ("Practitioner/x1", "userPractitionerId", "x1"),
        ("Practitioner/x1", "userPatientId", None),
        ("x1", "userPractitionerId", None),
        ("Practitioner/../x", "userPractitionerId", None),
        ("Practitioner/..", "userPractitionerId", None),
        ("practitioner/x1", "userPractitionerId", None),
    ],
)
def test_user_tokens_come_from_the_user_reference(user_id, token, expected):
    filled = fill_template(f"X/{{{{{token}}}}}", {"userId": user_id})
    assert filled == (None if expected is None else f"X/{expected}")


def test_an_explicit_user_reference_wins_over_the_context():
    assert fill_template("X/{{userPatientId}}", CONTEXT, user="Patient/p-5") == "X/p-5"


@pytest.mark.parametrize(
    "patient_id",
    [
        None,
        "",
        123,
        "x&_include=*",
        "../Observation",
        ".",
        "..",
        "...",
        "a/b",
        "a?b",
        "a#b",
        "a b",
        "%2F",
        "é",
        "a" * 256,
    ],
)
def test_a_patient_id_that_is_not_a_fhir_id_is_never_put_in_a_query(patient_id):
    assert fill_template("Patient/{{context.patientId}}", {"patientId": patient_id}) is None


def test_long_ids_from_real_ehrs_are_tolerated():
    long_id = "e" + "A1-." * 30
    assert fill_template("Patient/{{context.patientId}}", {"patientId": long_id}) == f"Patient/{long_id}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ehr.example.org/fhir", "https://ehr.example.org/fhir"),
        ("https://EHR.Example.org/fhir/", "https://ehr.example.org/fhir"),
        ("HTTPS://ehr.example.org:443/fhir", "https://ehr.example.org/fhir"),
        ("https://ehr.example.org:8443/fhir", "https://ehr.example.org:8443/fhir"),
        ("http://localhost:80/fhir", "http://localhost/fhir"),
        ("http://127.0.0.1:8080/R4/", "http://127.0.0.1:8080/R4"),
        ("https://ehr.example.org/FHIR/R4", "https://ehr.example.org/FHIR/R4"),  # paths keep their case
        ("https://[::1]:9443/fhir", "https://[::1]:9443/fhir"),
        ("https://[::1]:443/fhir", "https://[::1]/fhir"),
        ("https://ehr.example.org", "https://ehr.example.org"),
    ],
)
def test_base_urls_are_normalised(url, expected):
    assert normalise_server_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "ehr.example.org/fhir",
        "ftp://ehr.example.org/fhir",
        "file:///etc/passwd",
        "https://user:secret@ehr.example.org/fhir",
        "https://ehr.example.org/fhir?tenant=1",
        "https://ehr.example.org/fhir#x",
        "https://ehr.example.org:99999/fhir",
        "https://ehr.example.org:port/fhir",
        "https:///fhir",
    ],
)
def test_urls_that_cannot_be_a_base_are_refused(url):
    assert normalise_server_url(url) is None


@pytest.mark.parametrize(
    ("server_url", "allowed", "trusted"),
    [
        ("https://ehr.example.org/fhir", ["https://ehr.example.org/fhir/"], True),
        ("https://EHR.example.org:443/fhir/", ["https://ehr.example.org/fhir"], True),
        ("http://ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),  # https only unless named
        ("http://localhost:8081/fhir", ["http://localhost:8081/fhir"], True),  # named: a local demo
        ("https://ehr.example.org:444/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir2", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir/other", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org.evil.com/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://user@ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir", [], False),
        ("https://ehr.example.org/fhir", ["not a url", "https://other.org/fhir"], False),
    ],
)
def test_only_an_allowlisted_base_url_is_trusted(server_url, allowed, trusted):
    assert (trusted_server(server_url, allowed) is not None) is trusted
