"""Load and validate the knowledge file once, at start-up.

Every problem raises `RulesError` with the path of the rule and field at fault, e.g.
`variants.V7.categories.ct-lumbar-with-contrast: unknown category 'maybe'`, so a reviewer who edits the
file learns exactly what to fix. Unknown keys are errors too: a misspelt field must not be ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar, cast

import yaml

from fhir_mappings.model import PROCEDURE_IDS, RED_FLAG_IDS
from fhir_mappings.registry import PROCEDURE_MODALITY, RED_FLAG_TITLES

from .model import (
    Advice,
    AllOf,
    AnyOf,
    AtLeast,
    Category,
    Cell,
    Citation,
    Condition,
    ConditionTerm,
    ConservativeCare,
    Expression,
    FirstLine,
    FlagTerm,
    Guideline,
    Operator,
    OverrideReason,
    OverrideReasons,
    Procedure,
    ProcedureCode,
    Provenance,
    RadiationLevel,
    Referral,
    Rules,
    RulesError,
    UrgentRule,
    Variable,
    Variant,
    WeakFactors,
    expression_flags,
)
from .variables import VARIABLE_TYPES

DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "lbp-imaging-rules.yaml"

_OPERATORS: Mapping[str, tuple[Operator, ...]] = {
    "integer": (">=", ">", "<=", "<", "=="),
    "boolean": ("==",),
}

E = TypeVar("E", bound=StrEnum)


# libyaml's parser when PyYAML was built with it (ten times faster), else the pure-Python one.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc]
    """A safe loader that refuses duplicate keys: YAML would silently keep the last cell otherwise."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Hashable, Any]:
    loader.flatten_mapping(node)
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise RulesError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    mapping: dict[Hashable, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


class _Node:
    """A value from the file with its path, and typed readers that fail naming that path."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise RulesError(f"{self.path}: {message}" if self.path else message)

    def _child_path(self, key: object) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def fields(self, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, _Node]:
        """The mapping's fields; a missing required field or an unknown field is an error."""
        if not isinstance(self.value, dict):
            self.fail(f"must be a mapping, got {_kind(self.value)}")
        required, optional = tuple(required), tuple(optional)
        for key in self.value:
            if key not in required and key not in optional:
                self.fail(f"unknown field {key!r} (expected {', '.join(required + optional)})")
        for key in required:
            if key not in self.value:
                self.fail(f"missing field {key!r}")
        return {key: _Node(value, self._child_path(key)) for key, value in self.value.items()}

    def entries(self) -> dict[str, _Node]:
        """A mapping whose keys are ids chosen by the file (variants, citations...)."""
        if not isinstance(self.value, dict) or not self.value:
            self.fail(f"must be a non-empty mapping, got {_kind(self.value)}")
        return {str(key): _Node(value, self._child_path(key)) for key, value in self.value.items()}

    def items(self) -> list[_Node]:
        if not isinstance(self.value, list) or not self.value:
            self.fail(f"must be a non-empty list, got {_kind(self.value)}")
        return [_Node(value, f"{self.path}[{index}]") for index, value in enumerate(self.value)]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            self.fail(f"must be non-empty text, got {_kind(self.value)}")
        return self.value.strip()

    def integer(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.fail(f"must be an integer, got {_kind(self.value)}")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"must be true or false, got {_kind(self.value)}")
        return self.value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, bool | int | float):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else type(value).__name__


def _optional(fields: Mapping[str, _Node], key: str, read: Callable[[_Node], Any]) -> Any:
    return read(fields[key]) if key in fields else None


def _choice(node: _Node, owner: _Node, noun: str, allowed: Iterable[str]) -> str:
    """A value from a closed set; the error is reported on `owner` (the rule) and names the field."""
    allowed = tuple(allowed)
    if not isinstance(node.value, str) or node.value not in allowed:
        owner.fail(f"unknown {noun} {node.value!r} (expected one of {', '.join(allowed)})")
    return node.value


def _enum(node: _Node, owner: _Node, noun: str, enum: type[E]) -> E:
    return enum(_choice(node, owner, noun, [member.value for member in enum]))


class _Loader:
    """Reads the file section by section; later sections may refer to what earlier ones declared."""

    def __init__(self, document: Any) -> None:
        self.root = _Node(document, "")
        self.citations: dict[str, Citation] = {}
        self.conditions: dict[str, Condition] = {}

    def load(self) -> Rules:
        top = self.root.fields(
            required=(
                "version", "title", "guideline", "citations", "radiation_levels", "procedures",
                "variables", "conditions", "urgent", "weak_factors", "conservative_care",
                "contrast_preference", "override_reasons", "variants",
            ),
            optional=("implied_red_flags",),
        )  # fmt: skip
        version = top["version"].text()
        self.citations = self._citations(top["citations"])
        levels = self._radiation_levels(top["radiation_levels"])
        procedures = self._procedures(top["procedures"], levels)
        variables = self._variables(top["variables"])
        self.conditions = self._conditions(top["conditions"], variables)
        variants = self._variants(top["variants"], procedures)
        urgent = self._urgent(top["urgent"], variants)
        contrast = top["contrast_preference"]
        return Rules(
            version=version,
            title=top["title"].text(),
            guideline=self._guideline(top["guideline"]),
            citations=MappingProxyType(self.citations),
            procedures=MappingProxyType(procedures),
            red_flag_titles=RED_FLAG_TITLES,  # the registry's: one title per red flag everywhere
            variables=MappingProxyType(variables),
            conditions=MappingProxyType(self.conditions),
            variants=MappingProxyType(variants),
            urgent=urgent,
            weak_factors=self._weak_factors(top["weak_factors"]),
            conservative_care=self._conservative_care(top["conservative_care"]),
            contrast_preference=self._advice(contrast.fields(required=("advice", "citation")), contrast),
            implied_flags=MappingProxyType(
                self._implied_flags(top["implied_red_flags"]) if "implied_red_flags" in top else {}
            ),
            override_reasons=self._override_reasons(top["override_reasons"]),
        )

    # Sources --------------------------------------------------------------------------------------

    def _citations(self, node: _Node) -> dict[str, Citation]:
        citations = {}
        for citation_id, entry in node.entries().items():
            fields = entry.fields(
                required=("label", "title"), optional=("authors", "journal", "year", "doi", "url")
            )
            if "doi" not in fields and "url" not in fields:
                entry.fail("needs a doi or a url")
            url = _optional(fields, "url", _Node.text)
            if url is not None and not url.startswith(("https://", "http://")):
                fields["url"].fail(f"must be an absolute http(s) URL, got {url!r}")
            citations[citation_id] = Citation(
                id=citation_id,
                label=fields["label"].text(),
                title=fields["title"].text(),
                authors=_optional(fields, "authors", _Node.text),
                journal=_optional(fields, "journal", _Node.text),
                year=_optional(fields, "year", _Node.integer),
                doi=_optional(fields, "doi", _Node.text),
                url=url,
            )
        return citations

    def _citation(self, node: _Node, owner: _Node) -> str:
        return _choice(node, owner, f"citation in field {node.path.rsplit('.', 1)[-1]!r}", self.citations)

    def _advice(self, fields: Mapping[str, _Node], owner: _Node) -> Advice:
        return Advice(text=fields["advice"].text(), citation=self._citation(fields["citation"], owner))

    def _guideline(self, node: _Node) -> Guideline:
        fields = node.fields(required=("label", "citation", "links"))
        citation = self._citation(fields["citation"], node)
        links = tuple(self.citations[self._citation(link, node)] for link in fields["links"].items())
        return Guideline(label=fields["label"].text(), citation=self.citations[citation], links=links)

    # Procedures -----------------------------------------------------------------------------------

    def _radiation_levels(self, node: _Node) -> dict[int, RadiationLevel]:
        fields = node.fields(required=("citation", "levels"))
        self._citation(fields["citation"], node)
        levels = {}
        for key, entry in fields["levels"].entries().items():
            if not key.isdigit():
                entry.fail("a radiation level is a number of radiation symbols, 0 to 5")
            level = entry.fields(required=("symbol", "adult_effective_dose"))
            levels[int(key)] = RadiationLevel(
                rank=int(key),
                symbol=level["symbol"].text(),
                adult_effective_dose=level["adult_effective_dose"].text(),
            )
        return levels

    def _procedures(self, node: _Node, levels: Mapping[int, RadiationLevel]) -> dict[str, Procedure]:
        procedures = {}
        entries = node.entries()
        for procedure_id, entry in entries.items():
            if procedure_id not in PROCEDURE_IDS:
                entry.fail(f"unknown procedure (expected one of {', '.join(PROCEDURE_IDS)})")
            fields = entry.fields(
                required=("title", "radiation", "radiation_citation", "codes", "iv_contrast")
            )
            radiation = fields["radiation"].integer()
            if radiation not in levels:
                entry.fail(f"unknown radiation level {radiation} (declared: {', '.join(map(str, levels))})")
            procedures[procedure_id] = Procedure(
                id=procedure_id,
                modality=PROCEDURE_MODALITY[procedure_id],  # declared once, in the registry
                title=fields["title"].text(),
                radiation=levels[radiation],
                radiation_citation=self._citation(fields["radiation_citation"], entry),
                codes=self._codes(fields["codes"]),
                iv_contrast=fields["iv_contrast"].boolean(),
            )
        missing = [procedure for procedure in PROCEDURE_IDS if procedure not in procedures]
        if missing:
            node.fail(f"missing procedures: {', '.join(missing)}")
        return procedures

    def _codes(self, node: _Node) -> tuple[ProcedureCode, ...]:
        codes = []
        for item in node.items():
            fields = item.fields(required=("system", "code", "display", "citation"))
            system = fields["system"].text()
            if not system.startswith(("http://", "https://", "urn:")):
                fields["system"].fail(f"must be a code system URI, got {system!r}")
            codes.append(
                ProcedureCode(
                    system=system,
                    code=fields["code"].text(),
                    display=fields["display"].text(),
                    citation=self._citation(fields["citation"], item),
                )
            )
        return tuple(codes)

    # Terms ----------------------------------------------------------------------------------------

    def _variables(self, node: _Node) -> dict[str, Variable]:
        variables = {}
        for name, entry in node.entries().items():
            if name not in VARIABLE_TYPES:
                entry.fail(f"unknown variable (the engine provides {', '.join(VARIABLE_TYPES)})")
            fields = entry.fields(required=("type", "description"))
            declared = _choice(fields["type"], entry, "type", ("integer", "boolean"))
            if declared != VARIABLE_TYPES[name]:
                entry.fail(f"type {declared!r} does not match the engine's {VARIABLE_TYPES[name]!r}")
            variables[name] = Variable(
                name=name, type=VARIABLE_TYPES[name], description=fields["description"].text()
            )
        return variables

    def _conditions(self, node: _Node, variables: Mapping[str, Variable]) -> dict[str, Condition]:
        conditions = {}
        for condition_id, entry in node.entries().items():
            if condition_id in RED_FLAG_IDS:
                entry.fail("a condition may not reuse a red-flag id")
            fields = entry.fields(required=("variable", "operator", "value", "title"))
            variable = variables[_choice(fields["variable"], entry, "variable", variables)]
            operator = cast(
                Operator, _choice(fields["operator"], entry, "operator", _OPERATORS[variable.type])
            )
            value: int | bool = (
                fields["value"].integer() if variable.type == "integer" else fields["value"].boolean()
            )
            conditions[condition_id] = Condition(
                id=condition_id,
                variable=variable,
                operator=operator,
                value=value,
                title=fields["title"].text(),
            )
        return conditions

    def _expression(self, node: _Node) -> Expression:
        if isinstance(node.value, str):
            if node.value in RED_FLAG_IDS:
                return FlagTerm(node.value)
            if node.value in self.conditions:
                return ConditionTerm(self.conditions[node.value])
            node.fail(f"unknown red flag or condition {node.value!r}")
        if not isinstance(node.value, dict):
            node.fail(
                f"must be a red-flag id, a condition id, any_of, all_of or at_least, got {_kind(node.value)}"
            )
        if "at_least" in node.value:
            fields = node.fields(required=("at_least", "of"))
            terms = tuple(self._expression(term) for term in fields["of"].items())
            count = fields["at_least"].integer()
            if not 1 <= count <= len(terms):
                fields["at_least"].fail(f"must be between 1 and {len(terms)} (the number of terms)")
            return AtLeast(count, terms)
        if len(node.value) != 1 or next(iter(node.value)) not in ("any_of", "all_of"):
            node.fail("must have exactly one of any_of, all_of, or at_least with of")
        (key, child), = node.fields(required=(), optional=("any_of", "all_of")).items()  # fmt: skip
        items = tuple(self._expression(term) for term in child.items())
        return AnyOf(items) if key == "any_of" else AllOf(items)

    # Rules ----------------------------------------------------------------------------------------

    def _variants(self, node: _Node, procedures: Mapping[str, Procedure]) -> dict[str, Variant]:
        variants = {}
        entries = node.entries()
        for variant_id, entry in entries.items():
            fields = entry.fields(
                required=("title", "citation", "categories"),
                optional=(
                    "when", "otherwise", "excluded_by", "conservative_care_first", "note", "first_line",
                ),
            )  # fmt: skip
            otherwise = _optional(fields, "otherwise", _Node.boolean) or False
            if otherwise == ("when" in fields):
                entry.fail("needs either 'when' or 'otherwise: true'")
            excluded_by = tuple(
                _choice(item, entry, "variant in field 'excluded_by'", entries)
                for item in (fields["excluded_by"].items() if "excluded_by" in fields else ())
            )
            cells = self._cells(variant_id, fields["categories"], procedures)
            variants[variant_id] = Variant(
                id=variant_id,
                title=fields["title"].text(),
                when=self._expression(fields["when"]) if "when" in fields else None,
                otherwise=otherwise,
                excluded_by=excluded_by,
                conservative_care_first=_optional(fields, "conservative_care_first", _Node.boolean) or False,
                citation=self._citation(fields["citation"], entry),
                cells=MappingProxyType(cells),
                note=_optional(fields, "note", _Node.text),
                first_line=self._first_line(fields["first_line"], cells) if "first_line" in fields else None,
            )
        self._check_exclusions(variants, entries)
        return variants

    @staticmethod
    def _check_exclusions(variants: Mapping[str, Variant], entries: Mapping[str, _Node]) -> None:
        """One level only: a variant others defer to must stand on its own trigger (no cycles)."""
        fallbacks = [variant.id for variant in variants.values() if variant.otherwise]
        if len(fallbacks) > 1:
            entries[fallbacks[1]].fail(f"only one variant may be 'otherwise' (also {fallbacks[0]})")
        for variant in variants.values():
            for other in variant.excluded_by:
                if other == variant.id or variants[other].excluded_by or variants[other].otherwise:
                    entries[variant.id].fail(
                        f"excluded_by variant {other!r} must have its own trigger, without excluded_by"
                    )

    def _first_line(self, node: _Node, cells: Mapping[str, Cell]) -> FirstLine:
        """A first-line test must be one of the variant's usually appropriate procedures."""
        fields = node.fields(required=("procedures", "citation"), optional=("note",))
        chosen = []
        for item in fields["procedures"].items():
            procedure = _choice(item, node, "procedure in field 'procedures'", cells)
            category = cells[procedure].category
            if category is not Category.USUALLY_APPROPRIATE:
                node.fail(
                    f"first-line procedure {procedure!r} is rated {category.value} in this variant; "
                    "a first-line test must be usually-appropriate"
                )
            chosen.append(procedure)
        return FirstLine(
            procedures=tuple(chosen),
            citation=self._citation(fields["citation"], node),
            note=_optional(fields, "note", _Node.text),
        )

    def _cells(self, variant_id: str, node: _Node, procedures: Mapping[str, Procedure]) -> dict[str, Cell]:
        cells = {}
        for procedure_id, entry in node.entries().items():
            if procedure_id not in procedures:
                entry.fail("unknown procedure")
            fields = entry.fields(required=("category", "provenance", "citation"), optional=("note",))
            cells[procedure_id] = Cell(
                variant=variant_id,
                procedure=procedure_id,
                category=_enum(fields["category"], entry, "category", Category),
                provenance=_enum(fields["provenance"], entry, "provenance", Provenance),
                citation=self._citation(fields["citation"], entry),
                note=_optional(fields, "note", _Node.text),
            )
        missing = [procedure for procedure in procedures if procedure not in cells]
        if missing:
            node.fail(f"missing cells for procedures: {', '.join(missing)}")
        return cells

    def _urgent(self, node: _Node, variants: Mapping[str, Variant]) -> UrgentRule:
        """The urgent study must be usually appropriate wherever an urgent flag triggers a variant."""
        fields = node.fields(required=("when", "advice", "citation", "study"))
        when = self._expression(fields["when"])
        study = _choice(fields["study"], node, "procedure in field 'study'", PROCEDURE_IDS)
        urgent_flags = set(expression_flags(when))
        for variant in variants.values():
            category = variant.cells[study].category
            if urgent_flags.intersection(expression_flags(variant.when)) and (
                category is not Category.USUALLY_APPROPRIATE
            ):
                node.fail(
                    f"study {study!r} is rated {category.value} in variant {variant.id}, which an urgent "
                    "red flag triggers; the urgent study must be usually-appropriate there"
                )
        return UrgentRule(when=when, advice=self._advice(fields, node), study=study)

    def _implied_flags(self, node: _Node) -> dict[str, tuple[str, ...]]:
        implied = {}
        for flag_id, entry in node.entries().items():
            if flag_id not in RED_FLAG_IDS:
                entry.fail(f"unknown red flag (expected one of {', '.join(RED_FLAG_IDS)})")
            weaker = tuple(_choice(item, entry, "red flag", RED_FLAG_IDS) for item in entry.items())
            if flag_id in weaker:
                entry.fail("a red flag cannot imply itself")
            implied[flag_id] = weaker
        return implied

    def _weak_factors(self, node: _Node) -> WeakFactors:
        fields = node.fields(required=("flags", "advice", "citation"))
        flags = tuple(
            _choice(item, node, "red flag in field 'flags'", RED_FLAG_IDS) for item in fields["flags"].items()
        )
        return WeakFactors(flags=flags, advice=self._advice(fields, node))

    def _conservative_care(self, node: _Node) -> ConservativeCare:
        fields = node.fields(required=("advice", "citation", "referral"))
        referral = fields["referral"].fields(required=("text", "codes"))
        return ConservativeCare(
            advice=self._advice(fields, node),
            referral=Referral(text=referral["text"].text(), codes=self._codes(referral["codes"])),
        )

    def _override_reasons(self, node: _Node) -> OverrideReasons:
        fields = node.fields(required=("system", "standard", "urgent"))
        system = fields["system"].text()
        if not system.startswith(("http://", "https://", "urn:")):
            fields["system"].fail(f"must be a code system URI, got {system!r}")
        lists = {}
        for key in ("standard", "urgent"):
            reasons = []
            for item in fields[key].items():
                reason = item.fields(required=("code", "display"))
                reasons.append(OverrideReason(code=reason["code"].text(), display=reason["display"].text()))
            codes = [reason.code for reason in reasons]
            if len(set(codes)) != len(codes):
                fields[key].fail("override reason codes must be unique")
            lists[key] = tuple(reasons)
        return OverrideReasons(system=system, standard=lists["standard"], urgent=lists["urgent"])


def load_rules(path: Path | None = None) -> Rules:
    """Load and validate the knowledge file (default: the one shipped with the service)."""
    path = DEFAULT_RULES_PATH if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError(f"cannot read rules file {path}: {error.strerror}") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        return _Loader(document).load()
    except yaml.YAMLError as error:
        raise RulesError(f"{path.name} is not valid YAML: {error}") from None
    except RulesError as error:
        raise RulesError(f"{path.name}: {error}") from None
