"""Large and deeply nested hook requests: still judged, still within the limits (speed: `bench/`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.test_hooks import SIGN, example_request
from tests.support.http import json_of
from tests.support.large_record import large_request


def _nested_request(levels: int) -> dict[str, Any]:
    """The example request with a chain of `levels` objects under `extension` (depth 1 + levels).

    Every level quotes brackets and escaped quotes and backslashes, which are text, not nesting.
    """
    request = example_request()
    node: dict[str, Any] = request
    key = "extension"
    for level in range(levels):
        node[key] = {"note": '"]]}}\\" [[{{ \\', "[{": f"é\\{level}\\"}
        node, key = node[key], "x"
    return request


def test_the_cheap_depth_check_counts_only_real_nesting(client: FlaskClient) -> None:
    """The nesting limit (64) is checked on the body's text: brackets in strings do not count as levels."""
    for levels, status in ((63, 200), (64, 400)):
        body = json.dumps(_nested_request(levels), ensure_ascii=False).encode("utf-8")
        response = client.post(SIGN, data=body, content_type="application/json")
        assert response.status_code == status, levels
        if status == 400:
            assert "nests deeper than the limit of 64" in json_of(response)["message"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_not_in_utf8_is_refused_naming_the_encoding_rule(client: FlaskClient, encoding: str) -> None:
    body = json.dumps(_nested_request(3)).encode(encoding)
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid-json"
    assert "UTF-8 (RFC 8259)" in json_of(response)["message"]


def test_a_utf8_body_with_a_byte_order_mark_is_read(client: FlaskClient) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(_nested_request(3)).encode("utf-8")
    assert client.post(SIGN, data=body, content_type="application/json").status_code == 200


def test_order_sign_with_200_prefetched_resources_is_judged_on_all_of_them(client: FlaskClient) -> None:
    """The benchmark's load is a valid call whose red flags come from deep in the record (its speed is
    measured by `bench/order_sign.py`, not here: timings in tests flake on a shared machine)."""
    request = large_request()
    assert sum(len(v.get("entry", [])) for v in request["prefetch"].values() if v) >= 200
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    verdict = json_of(response)["cards"][0]["extension"]["lbp-imaging-cds"]
    assert "cancer-history" in verdict["redFlags"]  # Z85.3, the second of 60 Conditions
