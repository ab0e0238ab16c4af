"""Prefetch templates: fill the CDS Hooks 2.0 tokens so a query cannot be bent by the values put in.

CDS Hooks 2.0 allows only these tokens: `{{context.patientId}}`, `{{context.encounterId}}`,
`{{context.userId}}`, and `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`, `{{userPatientId}}`,
`{{userRelatedPersonId}}` (the id part of `context.userId` when it names a resource of that type).
Source: HL7 CDS Hooks 2.0.1, "Prefetch tokens" (cds-hooks.hl7.org/STU2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")

# FHIR R4 `id`: [A-Za-z0-9\-\.]{1,64}. Real EHRs send longer ids (Epic's can pass 64 characters), so the
# length is tolerated up to 255; the character set is not, because it is what keeps an id from adding path
# segments or query parameters. Ids made only of dots are refused: clients normalise `..` in a path.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,255}")
_DOTS_ONLY = re.compile(r"\.+")
_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,255})")

_CONTEXT_TOKENS = {
    "context.patientId": "patientId",
    "context.encounterId": "encounterId",
}
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _valid_id(value: object) -> str | None:
    if isinstance(value, str) and _FHIR_ID.fullmatch(value) and not _DOTS_ONLY.fullmatch(value):
        return value
    return None


def _valid_reference(value: object) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return None
    match = _REFERENCE.fullmatch(value)
    if match is None or _DOTS_ONLY.fullmatch(match["id"]):
        return None
    return match["type"], match["id"]


def _token_value(token: str, context: Mapping[str, Any], user: str | None) -> str | None:
    if token in _CONTEXT_TOKENS:
        return _valid_id(context.get(_CONTEXT_TOKENS[token]))
    user_reference = _valid_reference(user if user is not None else context.get("userId"))
    if token == "context.userId":  # noqa: S105 (a template token, not a password)
        return None if user_reference is None else "/".join(user_reference)
    if token in _USER_TOKENS and user_reference is not None and user_reference[0] == _USER_TOKENS[token]:
        return user_reference[1]
    return None


def fill_template(template: str, context: Mapping[str, Any], user: str | None = None) -> str | None:
    """The prefetch `template` with its tokens filled from `context`, or None when one cannot be filled.

    `user` is the FHIR reference of the user ("Practitioner/123"); by default `context.userId`. A token
    cannot be filled when it is not a CDS Hooks 2.0 token, its value is absent, or the value is not a
    well-formed FHIR id (or reference, for `context.userId`). Values are percent-encoded, `/` included.

    >>> fill_template("Condition?patient={{context.patientId}}", {"patientId": "123"})
    'Condition?patient=123'
    >>> fill_template("Patient/{{context.patientId}}", {"patientId": "1&_include=*"}) is None
    True
    >>> fill_template("MedicationRequest?requester={{context.userId}}", {"userId": "Practitioner/9"})
    'MedicationRequest?requester=Practitioner%2F9'
    >>> fill_template("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/9"})
    'Practitioner/9'
    """
    unfillable = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unfillable
        value = _token_value(match[1], context, user)
        if value is None:
            unfillable = True
            return ""
        return quote(value, safe="")

    filled = _TOKEN.sub(substitute, template)
    if unfillable or "{{" in filled or "}}" in filled:
        return None
    return filled
