"""The house rules of the layout, read from the source: a thin Flask edge, a core that never imports it,
mappings that import nothing from the service, and no import cycles."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "fhir_mappings")
WEB_FRAMEWORKS = ("flask", "flask_cors", "werkzeug")
# The HTTP edge: the only places that may know a web framework exists.
EDGE = ("service.http", "service.app")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _runtime_imports(path: Path) -> Iterator[str]:
    """Modules imported when `path` runs: `if TYPE_CHECKING:` blocks do not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _is_within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def test_only_the_http_edge_imports_a_web_framework() -> None:
    offenders = sorted(
        f"{module} imports {imported}"
        for module, path in _modules().items()
        if not _is_within(module, EDGE)
        for imported in _runtime_imports(path)
        if _is_within(imported, WEB_FRAMEWORKS)
    )
    assert offenders == []


def test_the_mappings_import_nothing_from_the_service() -> None:
    offenders = sorted(
        f"{module} imports {imported}"
        for module, path in _modules().items()
        if _is_within(module, ("fhir_mappings",))
        for imported in _runtime_imports(path)
        if _is_within(imported, ("service",))
    )
    assert offenders == []


@pytest.mark.parametrize(
    "core",
    [
        "service.usecases",
        "service.rules",
        "service.cds",
        "service.wording",
        "service.audit",
        "service.questions",
    ],
)
def test_the_core_does_not_reach_back_into_the_http_layer(core: str) -> None:
    offenders = sorted(
        f"{module} imports {imported}"
        for module, path in _modules().items()
        if _is_within(module, (core,))
        for imported in _runtime_imports(path)
        if _is_within(imported, EDGE)
    )
    assert offenders == []


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {name for name in _runtime_imports(path) if name in modules and name != module}
        graph[module] = targets
    return graph


def test_there_are_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            # A package's __init__ re-exporting its own submodules is not a cycle between modules.
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                if not any(later.startswith(earlier + ".") for earlier, later in itertools.pairwise(cycle)):
                    cycles.append(cycle)
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_checks_see_the_code_they_police() -> None:
    """Guards the guards: the scan finds the edge's Flask import and the use cases' imports."""
    modules = _modules()
    assert "flask" in set(_runtime_imports(modules["service.http.hooks"]))
    assert "service.usecases.decide" in set(_runtime_imports(modules["service.usecases.hook"]))


# The two steps every verdict is made of. Only `decide` may take them, so a hook, `/evaluate`, the Bulk
# audit and the questionnaire's re-judgement cannot drift into a route (or a rule) of their own.
JUDGING_STEPS = (
    "service.rules.assess",
    "service.rules.engine.assess",
    "fhir_mappings.findings",
    "fhir_mappings.apply_answers",  # a clinician's answers become evidence only on the way to the rules
    "fhir_mappings.answers.apply_answers",
)
ONE_ROUTE = "service.usecases.decide"


def test_only_decide_maps_a_record_and_applies_the_rules() -> None:
    offenders = sorted(
        f"{module} imports {imported}"
        for module, path in _modules().items()
        if module != ONE_ROUTE and not _is_within(module, ("fhir_mappings", "service.rules"))
        for imported in _runtime_imports(path)
        if imported in JUDGING_STEPS
    )
    assert offenders == []
    assert set(JUDGING_STEPS) & set(_runtime_imports(_modules()[ONE_ROUTE]))
