"""FHIR R4 JSON -> clinical findings with evidence, and draft orders -> lumbar imaging procedures.

Pure and tolerant: reads raw JSON, validates with fhir.resources R4B only the resources that feed a
finding, never raises for odd clinical data, never imports from `service`.

- `build_record(parts)`: prefetch/fetch values grouped by `InputKind` -> `PatientRecord` + quality notes
- `record_from_bundle(bundle)`: one Bundle (the `/evaluate` body) -> `PatientRecord` + draft orders
- `imaging_orders(draft_orders, selections)`: draft ServiceRequests -> `ImagingOrder`s (lumbar imaging only)
- `findings(record, orders, as_of)`: the record -> `Findings`
- `apply_answers(findings, answers)`: a clinician's answers to red-flag questions applied as evidence
- `check_terminology()`: validates value sets and criteria and warms up; call once at start-up
"""

from fhir_mappings.answers import apply_answers
from fhir_mappings.findings import findings
from fhir_mappings.inputs import build_record, record_from_bundle
from fhir_mappings.orders import imaging_orders, is_lumbar_imaging
from fhir_mappings.startup import check_terminology
from fhir_mappings.terminology import ValueSetError

__all__ = [
    "ValueSetError",
    "apply_answers",
    "build_record",
    "check_terminology",
    "findings",
    "imaging_orders",
    "is_lumbar_imaging",
    "record_from_bundle",
]
