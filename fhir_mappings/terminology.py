"""Value sets as data: loading, validation at start-up, and fast code matching.

Each `valuesets/<id>.json` has `id`, `title`, `source` (OID and release, or guideline, in words), `sources`
(ids in `knowledge/sources.yaml`), optional `note`,
`codes` by system URI, optional `exclude` (ICD-10-CM prefixes carved out of an included category) and
optional `text_terms` / `exclude_text_terms` (lower-case words matched in a coding display or text, for
drug ingredients that have no code list with a citable source).

ICD-10-CM entries are categories: `M54.5` matches M54.5 and every child (M54.50, M54.51, M54.59), with or
without the dot, because ICD-10-CM children always extend their parent's code. `C00-C96` is a range of
3-character categories. Other systems match exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fhir_mappings.registry import KnowledgeError, source_ids

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
KNOWN_SYSTEMS = frozenset({ICD10CM, SNOMED, LOINC, CPT, RXNORM})

VALUESET_DIR = Path(__file__).parent / "valuesets"

_ICD_ENTRY = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_ICD_RANGE = re.compile(r"^([A-Z][0-9][0-9A-Z])-([A-Z][0-9][0-9A-Z])$")
_CODE_SHAPES: Mapping[str, re.Pattern[str]] = {
    SNOMED: re.compile(r"^[1-9][0-9]{5,17}$"),
    LOINC: re.compile(r"^[0-9]{1,7}-[0-9]$"),
    CPT: re.compile(r"^[0-9]{4}[0-9A-Z]$"),
    RXNORM: re.compile(r"^[0-9]{1,9}$"),
}
_REQUIRED_TEXT_FIELDS = ("id", "title", "source")


class ValueSetError(ValueError):
    """A value-set file the service cannot run with; the message names the file and what is wrong."""


def normalize_icd10(code: str) -> str:
    """`m54.50 ` -> `M5450`: ICD-10-CM codes compare without the dot and case-insensitively."""
    return code.strip().replace(".", "").upper()


@dataclass(frozen=True, slots=True)
class ValueSet:
    id: str
    title: str
    source: str  # in words: which release, which OID, what was chosen
    sources: tuple[str, ...]  # ids in fhir_mappings/knowledge/sources.yaml
    codes: Mapping[str, frozenset[str]]  # system -> codes (ICD-10-CM normalized, without ranges)
    icd10_ranges: tuple[tuple[str, str], ...] = ()  # inclusive 3-character category ranges
    icd10_exclusions: tuple[str, ...] = ()  # normalized prefixes
    text_terms: tuple[str, ...] = ()
    exclude_text_terms: tuple[str, ...] = ()
    note: str | None = None

    def names_in_text(self, text: str) -> bool:
        """Whether free text (lower-cased by the caller) names one of the set's terms in an allowed form."""
        return any(term in text for term in self.text_terms) and not any(
            term in text for term in self.exclude_text_terms
        )


def _text_field(name: str, raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueSetError(f"value set {name}: '{key}' must be a non-empty string")
    return value


def _terms(name: str, raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(term, str) and term for term in value):
        raise ValueSetError(f"value set {name}: '{key}' must be a list of non-empty strings")
    return tuple(term.lower() for term in value)


def _codes_by_system(name: str, raw: Any, key: str) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise ValueSetError(f"value set {name}: '{key}' must be an object of system URI -> list of codes")
    result: dict[str, list[str]] = {}
    for system, codes in raw.items():
        if system not in KNOWN_SYSTEMS:
            raise ValueSetError(f"value set {name}: unknown code system URI in '{key}': {system}")
        if not isinstance(codes, list) or not codes or not all(isinstance(code, str) for code in codes):
            raise ValueSetError(f"value set {name}: '{key}' {system} must be a non-empty list of strings")
        result[system] = codes
    return result


def _check_shape(name: str, system: str, code: str) -> None:
    if system == ICD10CM:
        if not (_ICD_ENTRY.match(code) or _ICD_RANGE.match(code)):
            raise ValueSetError(f"value set {name}: not an ICD-10-CM code or category range: {code!r}")
    elif not _CODE_SHAPES[system].match(code):
        raise ValueSetError(f"value set {name}: not a valid code for {system}: {code!r}")


def parse_value_set(name: str, raw: Any) -> ValueSet:
    """Validates one value set's JSON; `name` (the file) is named in every error."""
    if not isinstance(raw, dict):
        raise ValueSetError(f"value set {name}: must be a JSON object")
    identifier, title, source = (_text_field(name, raw, key) for key in _REQUIRED_TEXT_FIELDS)
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueSetError(f"value set {name}: 'note' must be a string")
    try:
        cited = source_ids(raw, where=f"value set {name}")
    except KnowledgeError as error:
        raise ValueSetError(str(error)) from error
    included = _codes_by_system(name, raw.get("codes", {}), "codes")
    excluded = _codes_by_system(name, raw.get("exclude", {}), "exclude")
    if set(excluded) - {ICD10CM}:
        raise ValueSetError(f"value set {name}: 'exclude' is only supported for ICD-10-CM categories")
    text_terms = _terms(name, raw, "text_terms")
    if not included and not text_terms:
        raise ValueSetError(f"value set {name}: empty (no codes and no text terms)")
    codes: dict[str, frozenset[str]] = {}
    ranges: list[tuple[str, str]] = []
    for system, values in included.items():
        for code in values:
            _check_shape(name, system, code)
        if system == ICD10CM:
            for code in values:
                if match := _ICD_RANGE.match(code):
                    ranges.append((match.group(1), match.group(2)))
            values = [normalize_icd10(code) for code in values if not _ICD_RANGE.match(code)]
        codes[system] = frozenset(values)
    exclusions = excluded.get(ICD10CM, [])
    for code in exclusions:
        if not _ICD_ENTRY.match(code):
            raise ValueSetError(f"value set {name}: exclusion must be an ICD-10-CM code: {code!r}")
    return ValueSet(
        id=identifier,
        title=title,
        source=source,
        sources=cited,
        codes=codes,
        icd10_ranges=tuple(ranges),
        icd10_exclusions=tuple(normalize_icd10(code) for code in exclusions),
        text_terms=text_terms,
        exclude_text_terms=_terms(name, raw, "exclude_text_terms"),
        note=note,
    )


def load_value_sets_from(directory: Path) -> dict[str, ValueSet]:
    """Every `*.json` in `directory`, validated; the file name (without .json) must equal the id."""
    sets: dict[str, ValueSet] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueSetError(f"value set {path.name}: cannot be read as JSON: {error}") from error
        value_set = parse_value_set(path.name, raw)
        if value_set.id != path.stem:
            raise ValueSetError(f"value set {path.name}: id {value_set.id!r} differs from the file name")
        sets[value_set.id] = value_set
    if not sets:
        raise ValueSetError(f"no value sets found in {directory}")
    return sets


@cache
def load_value_sets() -> Mapping[str, ValueSet]:
    """The project's value sets, read and validated once (call at start-up to fail fast)."""
    return load_value_sets_from(VALUESET_DIR)


def value_set(identifier: str) -> ValueSet:
    try:
        return load_value_sets()[identifier]
    except KeyError:
        raise ValueSetError(f"value set {identifier}.json is missing from {VALUESET_DIR}") from None


# Distinct (system, code) answers remembered per index. A hospital's records reuse a few thousand codes,
# so repeated requests mostly hit; the bound keeps odd or hostile input from growing it without end.
_MEMO_LIMIT = 8192
_NONE: frozenset[str] = frozenset()


class CodeIndex:
    """Which of several value sets contain a coding, with one dict lookup per code prefix.

    Mapping a record asks this for every coding of every candidate resource, so it must not loop over
    the value sets; answers are memoised per (system, code) because the same codes recur in every record.
    """

    def __init__(self, value_sets: Iterable[ValueSet]) -> None:
        self._exact: dict[tuple[str, str], set[str]] = {}
        self._icd10: dict[str, set[str]] = {}
        self._ranges: list[tuple[str, str, str]] = []
        self._exclusions: dict[str, tuple[str, ...]] = {}
        self._memo: dict[tuple[str | None, str | None], frozenset[str]] = {}
        for vs in value_sets:
            for system, codes in vs.codes.items():
                target = self._icd10 if system == ICD10CM else None
                for code in codes:
                    if target is not None:
                        target.setdefault(code, set()).add(vs.id)
                    else:
                        self._exact.setdefault((system, code), set()).add(vs.id)
            self._ranges.extend((low, high, vs.id) for low, high in vs.icd10_ranges)
            if vs.icd10_exclusions:
                self._exclusions[vs.id] = vs.icd10_exclusions

    def matching(self, system: str | None, code: str | None) -> frozenset[str]:
        """The ids of the indexed value sets that contain this coding (empty for other systems)."""
        key = (system, code)
        found = self._memo.get(key)
        if found is None:
            found = self._match(system, code)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()  # rare; a plain dict keeps the hit path cheap (no LRU bookkeeping)
            self._memo[key] = found
        return found

    def _match(self, system: str | None, code: str | None) -> frozenset[str]:
        if not system or not code:
            return _NONE
        if system != ICD10CM:
            return frozenset(self._exact.get((system, code.strip()), ()))
        normalized = normalize_icd10(code)
        found: set[str] = set()
        for length in range(3, len(normalized) + 1):
            found.update(self._icd10.get(normalized[:length], ()))
        category = normalized[:3]
        found.update(vs_id for low, high, vs_id in self._ranges if low <= category <= high)
        for vs_id in [vs_id for vs_id in found if vs_id in self._exclusions]:
            if any(normalized.startswith(prefix) for prefix in self._exclusions[vs_id]):
                found.discard(vs_id)
        return frozenset(found)


@cache
def code_index(*value_set_ids: str) -> CodeIndex:
    """A cached index over the named value sets (built on first use, after start-up validation)."""
    return CodeIndex(value_set(identifier) for identifier in value_set_ids)
