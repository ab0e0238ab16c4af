"""Read the repository's Dockerfile and .dockerignore the way the tests need them (no Docker engine here)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DOCKERFILE = REPOSITORY / "Dockerfile"
DOCKERIGNORE = REPOSITORY / ".dockerignore"


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case, e.g. "RUN"
    arguments: str  # continuation lines joined


def instructions(text: str) -> list[Instruction]:
    """The instructions in order; comments and parser directives dropped, `\\` continuations joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(items: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts with FROM); ARGs before the first FROM are dropped."""
    grouped: list[list[Instruction]] = []
    for item in items:
        if item.keyword == "FROM":
            grouped.append([item])
        elif grouped:
            grouped[-1].append(item)
    return grouped


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD; fails on shell form."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), arguments
    assert all(isinstance(part, str) for part in parsed), arguments
    return parsed


def healthcheck_command(items: list[Instruction]) -> list[str]:
    """The exec-form command of the last HEALTHCHECK (after its --options)."""
    healthcheck = [item for item in items if item.keyword == "HEALTHCHECK"][-1]
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", healthcheck.arguments)
    assert match, f"HEALTHCHECK must use the exec form: {healthcheck.arguments}"
    return exec_form(match.group(1))


def copy_sources(item: Instruction) -> list[str]:
    """Build-context paths a COPY/ADD takes (none for `--from=<stage>` copies)."""
    words = shlex.split(item.arguments)
    if any(word.startswith("--from=") for word in words):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def env_values(items: list[Instruction]) -> dict[str, str]:
    """ENV key=value pairs (the key=value form only, which the Dockerfile uses)."""
    values: dict[str, str] = {}
    for item in items:
        if item.keyword == "ENV":
            for word in shlex.split(item.arguments):
                key, _, value = word.partition("=")
                values[key] = value
    return values


def dockerignore_sends(relative_path: str, patterns: list[str]) -> bool:
    """Whether Docker would send `relative_path` in the build context: the last matching pattern wins."""
    sent = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if _matches(relative_path, bare):
            sent = negated
    return sent


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    # A pattern matching a directory covers everything under it; `**/` matches at any depth.
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    candidates = [pattern]
    if pattern.startswith("**/"):
        candidates.append(pattern.removeprefix("**/"))
        prefixes += [
            "/".join(parts[index:stop])
            for index in range(len(parts))
            for stop in range(index + 1, len(parts) + 1)
        ]
    return any(fnmatch.fnmatchcase(prefix, candidate) for prefix in prefixes for candidate in candidates)
