"""FHIR R4 JSON -> clinical findings with evidence, and draft orders -> lumbar imaging procedures.

Pure and tolerant: reads raw JSON, validates with fhir.resources R4B only the resources that feed a
finding, never raises for odd clinical data, never imports from `service`.

Public API (implemented in the submodules):
- `build_record(parts)`: prefetch/fetch values grouped by `InputKind` -> `PatientRecord` + quality notes
- `record_from_bundle(bundle)`: one Bundle (the `/evaluate` body) -> `PatientRecord` + draft orders
- `imaging_orders(draft_orders, selections)`: draft ServiceRequests -> `ImagingOrder`s (lumbar imaging only)
- `findings(record, orders, as_of)`: the record -> `Findings`
"""
