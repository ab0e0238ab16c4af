"""The draft orders the demo page builds: a ServiceRequest as an EHR's order entry holds it while the
clinician is still choosing (status draft), coded by the order codes of `examples/patients/index.json`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from service.errors import ApiError

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
# The reasons the page offers for an order (ServiceRequest.reasonCode), coded as EHRs code them.
ORDER_REASONS: tuple[Mapping[str, Any], ...] = (
    {
        "id": "low-back-pain",
        "coding": [{"system": ICD10, "code": "M54.50", "display": "Low back pain, unspecified"}],
    },
    {
        "id": "sciatica",
        "coding": [{"system": ICD10, "code": "M54.41", "display": "Lumbago with sciatica, right side"}],
    },
    {
        "id": "suspected-cauda-equina",
        "coding": [{"system": SNOMED, "code": "192970008", "display": "Cauda equina syndrome"}],
    },
    {"id": "fever", "coding": [{"system": ICD10, "code": "R50.9", "display": "Fever, unspecified"}]},
    {
        "id": "lumbar-trauma",
        "coding": [
            {"system": ICD10, "code": "S32.009A", "display": "Fracture of unspecified lumbar vertebra"}
        ],
    },
)
_ORDER_NUMBER = re.compile(r"[1-9][0-9]{0,3}")


def draft_order(
    order_codes: Mapping[str, Mapping[str, str]],
    *,
    patient_id: str,
    procedure: str,
    reason: str | None,
    order_number: str,
) -> dict[str, Any]:
    """A draft ServiceRequest for `procedure` (a key of `order_codes`); a 400 names what is unknown."""
    if procedure not in order_codes:
        known = ", ".join(order_codes)
        raise ApiError(
            400, "invalid-request", f"unknown order {procedure!r}; the demo orders {known}", "procedure"
        )
    if not _ORDER_NUMBER.fullmatch(order_number):
        raise ApiError(400, "invalid-request", "n must be an order number from 1 to 9999", "n")
    code = dict(order_codes[procedure])
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"draft-{order_number}",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "363679005", "display": "Imaging"}]}],
        "code": {"coding": [code], "text": code["display"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": "Practitioner/demo-clinician"},
    }
    if reason is not None:
        for known_reason in ORDER_REASONS:
            if known_reason["id"] == reason:
                order["reasonCode"] = [{"coding": list(known_reason["coding"])}]
                break
        else:
            names = ", ".join(str(r["id"]) for r in ORDER_REASONS)
            raise ApiError(
                400, "invalid-request", f"unknown reason {reason!r}; the demo offers {names}", "reason"
            )
    return order
