"""Clinician wording: the one place codes and structured reasons become words for cards, `/evaluate`,
the demo page, the audit report and the questions. The core (mappings, engine, fetch) returns codes."""
