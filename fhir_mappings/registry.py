"""The one registry of red-flag and procedure ids, their titles and modalities, and the sources the
mappings' knowledge cites: read once from `knowledge/red-flag-criteria.yaml` and `knowledge/sources.yaml`.

The mappings, the rules (`service/rules/loader.py`) and the contract (`openapi.yaml`, checked by a test)
all take their ids from here, so a red flag is named once. The criteria themselves (value sets, windows,
thresholds) are read from the same file by `fhir_mappings.criteria`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

import yaml

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"
CRITERIA_FILE = KNOWLEDGE_DIR / "red-flag-criteria.yaml"
SOURCES_FILE = KNOWLEDGE_DIR / "sources.yaml"

Modality = Literal["XR", "MRI", "CT"]
MODALITIES: tuple[Modality, ...] = ("XR", "MRI", "CT")
VERIFICATION_LEVELS = ("verified", "secondary", "unverified")
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KnowledgeError(ValueError):
    """A knowledge file the service cannot run with; the message names the file, the entry and the fault."""


@dataclass(frozen=True, slots=True)
class Source:
    """A work the knowledge cites: where to find it (DOI or URL, if any) and how it was checked."""

    id: str
    title: str
    authors: str
    verification: str  # one of VERIFICATION_LEVELS
    published: str | None = None
    doi: str | None = None
    url: str | None = None


def read_yaml_mapping(path: Path) -> Mapping[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)  # noqa: S506 (safe loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise KnowledgeError(f"{path.name}: cannot be read as YAML: {error}") from error
    if not isinstance(document, dict):
        raise KnowledgeError(f"{path.name}: must be a mapping at the top level")
    return document


def entries(document: Mapping[str, Any], key: str, *, where: str) -> Mapping[str, Mapping[str, Any]]:
    """`document[key]` as a non-empty mapping of id -> mapping."""
    section = document.get(key)
    if not isinstance(section, dict) or not section:
        raise KnowledgeError(f"{where}: '{key}' must be a non-empty mapping")
    for entry_id, entry in section.items():
        if not isinstance(entry_id, str) or not isinstance(entry, dict):
            raise KnowledgeError(f"{where} {key}.{entry_id}: must be a mapping")
    return cast("Mapping[str, Mapping[str, Any]]", section)


def text(entry: Mapping[str, Any], key: str, *, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeError(f"{where}: '{key}' must be non-empty text")
    return value.strip()


@cache
def criteria_document() -> Mapping[str, Any]:
    return read_yaml_mapping(CRITERIA_FILE)


@cache
def sources() -> Mapping[str, Source]:
    """Every source the mappings' knowledge may cite, by id."""
    document = read_yaml_mapping(SOURCES_FILE)
    result = {}
    for source_id, entry in document.items():
        where = f"{SOURCES_FILE.name} {source_id}"
        if not isinstance(entry, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        unknown = set(entry) - {"title", "authors", "verification", "published", "doi", "url"}
        if unknown:
            raise KnowledgeError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
        verification = text(entry, "verification", where=where)
        if verification not in VERIFICATION_LEVELS:
            raise KnowledgeError(f"{where}: verification must be one of {', '.join(VERIFICATION_LEVELS)}")
        url = text(entry, "url", where=where, required=False)
        if url is not None and not url.startswith("https://"):
            raise KnowledgeError(f"{where}: url must be an https URL")
        result[str(source_id)] = Source(
            id=str(source_id),
            title=cast(str, text(entry, "title", where=where)),
            authors=cast(str, text(entry, "authors", where=where)),
            verification=verification,
            published=text(entry, "published", where=where, required=False),
            doi=text(entry, "doi", where=where, required=False),
            url=url,
        )
    return MappingProxyType(result)


def source_ids(entry: Mapping[str, Any], *, where: str) -> tuple[str, ...]:
    """An entry's `sources`: a non-empty list of ids in sources.yaml."""
    cited = entry.get("sources")
    if not isinstance(cited, list) or not cited or not all(isinstance(item, str) for item in cited):
        raise KnowledgeError(f"{where}: 'sources' must be a non-empty list of source ids")
    unknown = [item for item in cited if item not in sources()]
    if unknown:
        raise KnowledgeError(f"{where}: unknown sources {', '.join(unknown)} (not in {SOURCES_FILE.name})")
    return tuple(cited)


def _red_flag_titles() -> Mapping[str, str]:
    flags = entries(criteria_document(), "red_flags", where=CRITERIA_FILE.name)
    return MappingProxyType(
        {
            flag_id: cast(str, text(entry, "title", where=f"{CRITERIA_FILE.name} red_flags.{flag_id}"))
            for flag_id, entry in flags.items()
        }
    )


def _procedure_modalities() -> Mapping[str, Modality]:
    procedures = entries(criteria_document(), "procedures", where=CRITERIA_FILE.name)
    result: dict[str, Modality] = {}
    for procedure_id, entry in procedures.items():
        modality = entry.get("modality")
        if modality not in MODALITIES:
            allowed = ", ".join(MODALITIES)
            raise KnowledgeError(
                f"{CRITERIA_FILE.name} procedures.{procedure_id}: modality must be one of {allowed}"
            )
        result[procedure_id] = cast(Modality, modality)
    return MappingProxyType(result)


# Read at import: every module that names a red flag or procedure needs them, and a bad file must stop
# the service before it serves anything.
RED_FLAG_TITLES: Mapping[str, str] = _red_flag_titles()
RED_FLAG_IDS: tuple[str, ...] = tuple(RED_FLAG_TITLES)
PROCEDURE_MODALITY: Mapping[str, Modality] = _procedure_modalities()
PROCEDURE_IDS: tuple[str, ...] = tuple(PROCEDURE_MODALITY)
