"""The token goes only to an allowlisted FHIR server's own origin, and never into logs or results."""

from __future__ import annotations

import logging

import pytest

from service.fetch import PrefetchGatherer
from tests.fetch.conftest import ACCESS_TOKEN, PATIENT_ID, TEMPLATES, authorization, gather, ids


def test_an_untrusted_fhir_server_receives_nothing(gatherer, fhir_server, other_server):
    result = gather(gatherer, other_server, allowed_servers=[fhir_server.base_url])

    assert other_server.received == []
    assert fhir_server.received == []
    assert result.missing == dict.fromkeys(TEMPLATES, "untrusted-fhirServer")


def test_no_allowlist_means_no_fetching(gatherer, fhir_server):
    result = gather(gatherer, fhir_server, allowed_servers=[])

    assert fhir_server.received == []
    assert set(result.missing.values()) == {"untrusted-fhirServer"}


def test_plain_http_is_refused_when_the_allowlist_names_only_https(gatherer, fhir_server):
    https_twin = fhir_server.base_url.replace("http://", "https://")

    result = gather(gatherer, fhir_server, allowed_servers=[https_twin])

    assert fhir_server.received == []
    assert set(result.missing.values()) == {"untrusted-fhirServer"}


def test_an_allowlist_entry_matches_after_normalisation(gatherer, fhir_server):
    shouting = fhir_server.base_url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/"

    result = gather(gatherer, fhir_server, fhir_server=shouting)

    assert result.missing == {}
    assert len(fhir_server.received) == len(TEMPLATES)


def test_a_redirect_to_another_origin_is_not_followed_and_gets_no_token(gatherer, fhir_server, other_server):
    fhir_server.knobs.redirect_to = {"Condition": f"{other_server.base_url}/Condition?patient={PATIENT_ID}"}

    result = gather(gatherer, fhir_server)

    assert result.missing == {"conditions": "redirect-refused"}
    assert other_server.received == []


def test_a_redirect_on_the_same_origin_is_followed_with_the_token(gatherer, fhir_server):
    fhir_server.knobs.redirect_to = {"Condition": f"/fhir/Procedure?patient={PATIENT_ID}"}

    result = gather(gatherer, fhir_server)

    assert ids(result.values["conditions"]) == ["proc-1"]
    followed = fhir_server.requests_for("Procedure")
    assert len(followed) == 2  # the procedures key itself, and the redirected conditions query
    assert all(r.headers["authorization"] == f"Bearer {ACCESS_TOKEN}" for r in followed)


def test_a_redirect_loop_on_the_same_origin_gives_up(gatherer, fhir_server):
    fhir_server.knobs.redirect_to = {"Condition": f"/fhir/Condition?patient={PATIENT_ID}"}

    result = gather(gatherer, fhir_server)

    assert result.missing == {"conditions": "too-many-redirects"}
    assert len(fhir_server.requests_for("Condition")) == 4  # the query and three hops


def test_a_next_link_to_another_origin_is_not_followed_and_the_cut_is_recorded(
    gatherer, fhir_server, other_server
):
    fhir_server.knobs.page_size = 2
    fhir_server.knobs.next_link_base = other_server.base_url

    result = gather(gatherer, fhir_server)

    assert ids(result.values["conditions"]) == ["cond-1", "cond-2"]
    assert result.truncated == {"conditions": "next-link-other-origin"}
    assert other_server.received == []


def test_cookies_set_by_the_server_are_never_sent_back(gatherer, fhir_server):
    fhir_server.knobs.set_cookie = {"Patient": "session=patient-a-context; Path=/"}

    gather(gatherer, fhir_server)
    gather(gatherer, fhir_server)

    assert all("cookie" not in r.headers for r in fhir_server.received)


def test_a_patient_id_cannot_add_query_parameters_or_path_segments(gatherer, fhir_server):
    for hostile in ["x&_include=*", "../Condition", "..", "a/b", "a?b=c", "a b", "%2e%2e"]:
        result = gather(gatherer, fhir_server, context={"patientId": hostile})
        assert result.missing == dict.fromkeys(TEMPLATES, "template-not-fillable"), hostile
    assert fhir_server.received == []


def test_one_log_line_per_gather_with_timings_and_no_token_or_patient_id(gatherer, fhir_server, caplog):
    fhir_server.knobs.status = {"Procedure": 500}
    fhir_server.knobs.page_size = 2
    caplog.set_level(logging.DEBUG, logger="lbp.fetch")

    result = gather(gatherer, fhir_server, {"medicationStatements": None}, hook_instance="d1577c69-dfbe")

    records = [r for r in caplog.records if r.name == "lbp.fetch"]
    assert len(records) == 1
    fetch = records[0].fetch
    assert records[0].hookInstance == "d1577c69-dfbe"
    assert fetch["elapsed_ms"] == result.elapsed_ms
    assert fetch["fhir_origin"] == fhir_server.origin
    assert fetch["keys"]["medicationStatements"] == {"source": "prefetch", "outcome": "null"}
    assert fetch["keys"]["procedures"]["outcome"] == "http-500"
    assert fetch["keys"]["procedures"]["status"] == 500
    conditions = fetch["keys"]["conditions"]
    assert conditions["source"] == "fetched"
    assert conditions["pages"] == 3
    assert conditions["bytes"] > 0
    assert conditions["ms"] == result.timings_ms["conditions"]
    _assert_no_secret_in_logs(caplog)


def test_failures_leave_no_token_in_any_log_or_result(fhir_server, other_server, limits, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    fhir_server.knobs.redirect_to = {"Condition": other_server.base_url}
    fhir_server.knobs.status = {"Observation": 401}
    fhir_server.knobs.delay_seconds = {"Procedure": 2.0}
    fhir_server.knobs.raw_body = {"Patient": b"not json"}
    with PrefetchGatherer(**{**limits, "deadline_seconds": 0.3}) as gatherer:
        result = gather(gatherer, fhir_server)
        second_call = gather(gatherer, other_server, allowed_servers=[other_server.base_url, "https://x.org"])

    assert set(result.missing) == {"conditions", "observations", "procedures", "patient"}
    assert other_server.received  # the second call, made on purpose against it
    for value in (result, second_call):
        assert ACCESS_TOKEN not in repr(value)
    assert all(ACCESS_TOKEN not in str(record.__dict__) for record in caplog.records)


def test_the_authorization_header_helper_never_shows_the_token():
    from service.fetch.query import BearerToken

    assert ACCESS_TOKEN not in repr(BearerToken(ACCESS_TOKEN))
    assert ACCESS_TOKEN not in str(BearerToken(ACCESS_TOKEN))


@pytest.mark.parametrize("authorization_value", [authorization(), authorization("other-token-123")])
def test_the_token_given_is_the_token_sent(gatherer, fhir_server, authorization_value):
    gather(gatherer, fhir_server, fhir_authorization=authorization_value)

    sent = {r.headers["authorization"] for r in fhir_server.received}
    assert sent == {f"Bearer {authorization_value['access_token']}"}


def _assert_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        everything = f"{record.getMessage()} {record.__dict__}"
        assert ACCESS_TOKEN not in everything
        assert PATIENT_ID not in everything
        assert "/Condition?" not in everything
