"""Example payloads: this service's own (here) and the CDS Hooks spec's and peers' (one copy, in
tests/fixtures/reference-examples, see its PROVENANCE.md), used as given, known defects included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OWN_EXAMPLES = Path(__file__).resolve().parent
REFERENCE_EXAMPLES = OWN_EXAMPLES.parents[1] / "fixtures" / "reference-examples"


def load_example(name: str) -> Any:
    """The parsed JSON of `<name>.json`: this service's example, else the public reference example."""
    own = OWN_EXAMPLES / f"{name}.json"
    path = own if own.exists() else REFERENCE_EXAMPLES / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))
