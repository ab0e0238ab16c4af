"""The CDS services this app offers, as data (`services.json`), loaded and checked once at start-up."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_mappings.model import InputKind

SERVICES_FILE = Path(__file__).with_name("services.json")
SUPPORTED_HOOKS = ("order-select", "order-sign")
# CDS Hooks 2.0 prefetch tokens: top-level context values and the user's typed ids.
_ALLOWED_TOKENS = {
    "context.patientId",
    "context.encounterId",
    "context.userId",
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
}
_TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }


@dataclass(frozen=True, slots=True)
class ServiceCatalog:
    services: Mapping[str, CdsService]
    prefetch_inputs: Mapping[str, InputKind]  # prefetch key -> the part of the record it feeds
    required_prefetch: tuple[str, ...]  # without these there is no answer (412)
    prefetch_labels: Mapping[str, str]  # prefetch key -> what it holds, in a clinician's words

    def discovery(self) -> dict[str, Any]:
        return {"services": [service.discovery_entry() for service in self.services.values()]}


def load_catalog(path: Path = SERVICES_FILE) -> ServiceCatalog:
    """Read and check the services file; a mistake fails start-up with the field named."""
    data = json.loads(path.read_text(encoding="utf-8"))
    inputs = {key: InputKind(kind) for key, kind in data["prefetchInputs"].items()}
    services: dict[str, CdsService] = {}
    for index, entry in enumerate(data["services"]):
        where = f"{path.name}: services[{index}]"
        if entry["hook"] not in SUPPORTED_HOOKS:
            raise ValueError(f"{where}.hook: unsupported hook {entry['hook']!r}")
        for key, template in entry["prefetch"].items():
            if key not in inputs:
                raise ValueError(f"{where}.prefetch.{key}: no entry in prefetchInputs")
            for token in _TOKEN.findall(template):
                if token not in _ALLOWED_TOKENS:
                    raise ValueError(f"{where}.prefetch.{key}: {token!r} is not a CDS Hooks 2.0 token")
        if entry["id"] in services:
            raise ValueError(f"{where}.id: duplicate id {entry['id']!r}")
        services[entry["id"]] = CdsService(
            id=entry["id"],
            hook=entry["hook"],
            title=entry["title"],
            description=entry["description"],
            prefetch=dict(entry["prefetch"]),
        )
    required = tuple(data["requiredPrefetch"])
    for key in required:
        if key not in inputs:
            raise ValueError(f"{path.name}: requiredPrefetch names unknown key {key!r}")
    labels = dict(data["prefetchLabels"])
    unlabelled = sorted(set(inputs) - set(labels))
    if unlabelled:
        raise ValueError(f"{path.name}: prefetchLabels lacks {', '.join(unlabelled)}")
    return ServiceCatalog(
        services=services, prefetch_inputs=inputs, required_prefetch=required, prefetch_labels=labels
    )
