"""Example payloads from the CDS Hooks spec and peers (see PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent


def load_example(name: str) -> Any:
    """The parsed JSON of `<name>.json` in this folder."""
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
