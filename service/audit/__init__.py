"""Retrospective audit of a FHIR Bulk Data export: every lumbar imaging order judged as of its own date.

The audit reads NDJSON files (gzip or not), groups resources by patient through hash-partitioned spill
files on disk (memory bounded by a partition, not by the export), and judges each order through the
same route as a hook call: `fhir_mappings.build_record` -> `service.usecases.decide.decide`. It also
computes the CMS166v7 quality measure and writes CSV, NDJSON, JSON and a self-contained HTML report.

- `synth.write_export(...)`: a synthetic export with its known answers, for tests and benchmarks
- `run.run_audit(...)`: the audit itself (the CLI's `audit` command)
"""
