"""What a suite file becomes: item specs, or a SuiteError listing every problem with its line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_grokeval.checks.registry import Check
from pytest_grokeval.data import ChatRequest


class SuiteError(Exception):
    """Malformed suite file: every problem found, each with its 1-based line (None if none)."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(path, problems)

    def format(self, display_path: str) -> str:
        """One line per problem: ``<display_path>:<line>: <message>``."""
        return "\n".join(
            f"{display_path}: {message}" if line is None else f"{display_path}:{line}: {message}"
            for line, message in self.problems
        )

    def __str__(self) -> str:
        return self.format(str(self.path))


@dataclass(frozen=True)
class MarkSpec:
    """A pytest mark from YAML: ``skip``, ``xfail`` or a custom marker name."""

    name: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class CaseItemSpec:
    """One pytest item: a case with one choice of vars and model."""

    name: str
    case_id: str
    line: int  # 0-based, as pytest's reportinfo wants it
    requests: tuple[ChatRequest, ...]  # one per sample
    checks: tuple[Check, ...]
    marks: tuple[MarkSpec, ...]
    tags: tuple[str, ...]
    repeat: int
    min_pass_rate: float
    vars: dict[str, str]


@dataclass(frozen=True)
class Suite:
    """A suite file's items, in file order."""

    path: Path
    items: tuple[CaseItemSpec, ...]
