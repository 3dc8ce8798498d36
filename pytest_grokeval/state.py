"""A session's state, one typed object per writer, and the stash key that finds it.

- `Collection`: what collection found; written only through its methods, by collect/items.py
  (files, marks) and prefetch/session.py (selection).
- `FetchResults`: what the prefetch obtained; written by prefetch/run.py, or by the xdist
  follower that adopts the fetching worker's results.
- `Summary`: the figures the terminal summary and the reports print; written by the prefetch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_grokeval.checks.judge import JudgeError
from pytest_grokeval.checks.registry import Check, CheckResult
from pytest_grokeval.data import ChatRequest, FetchError, Outcome
from pytest_grokeval.engine.engine import EngineStats

if TYPE_CHECKING:
    from pytest_grokeval.prefetch.run import GrokRun

# The session's GrokRun, set in pytest_configure.
RUN_KEY: pytest.StashKey[GrokRun] = pytest.StashKey()


@dataclass
class Collection:
    """What collection found, per suite file (absolute paths)."""

    # Every recording key (name, sample) the file's collected items may use.
    keys: dict[Path, set[tuple[str, int]]] = field(default_factory=dict)
    names: dict[Path, set[str]] = field(default_factory=dict)  # its collected item names
    selected: dict[Path, set[str]] = field(default_factory=dict)  # the names left after -k/-m
    marks: set[str] = field(default_factory=set)  # custom marker names already registered
    items: int = 0  # selected suite items and @pytest.mark.grok tests

    def add_file(self, path: Path, keys: set[tuple[str, int]], names: set[str]) -> None:
        """Note one collected suite file: its recording keys and item names."""
        self.keys[path] = keys
        self.names[path] = names

    def register_mark(self, name: str) -> bool:
        """True the first time a custom mark name is seen: the caller registers it with pytest."""
        if name in self.marks:
            return False
        self.marks.add(name)
        return True

    def select(self, chosen: Iterable[tuple[Path, str]], count: int) -> None:
        """The selected suite items as (file, name), and how many items the run fetches for."""
        self.items = count
        for path, name in chosen:
            self.selected.setdefault(path, set()).add(name)

    def whole(self, path: Path) -> bool:
        """Whether every item collected from the file was selected."""
        return self.selected.get(path, set()) == self.names.get(path, set())


@dataclass
class FetchResults:
    """What the prefetch obtained: outcomes by (item key, sample), grader replies by (key,
    sample, check name), and the check results the prefetch computed to stop sampling (or the
    judge problem that left a sample undecided): items show these, never re-run them."""

    outcomes: dict[tuple[str, int], Outcome] = field(default_factory=dict)
    graded: dict[tuple[str, int, str], Outcome] = field(default_factory=dict)
    checked: dict[tuple[str, int], list[CheckResult] | JudgeError] = field(default_factory=dict)
    # Check results of the fetching xdist worker: (judge problem or None, rows).
    adopted: dict[tuple[str, int], tuple[str | None, list[Any]]] = field(default_factory=dict)

    def outcome(self, key: str, sample: int) -> Outcome:
        """The sample's outcome; a FetchError of kind 'missing' when nothing was fetched."""
        found = self.outcomes.get((key, sample))
        if found is None:
            return FetchError("no response was fetched for this item", kind="missing")
        return found

    def samples(self, key: str, requests: Sequence[ChatRequest]) -> list[Outcome]:
        """The outcomes an item got, in order; early stopping leaves the rest unfetched."""
        found = []
        for request in requests:
            outcome = self.outcomes.get((key, request.sample))
            if outcome is None:
                break
            found.append(outcome)
        return found or [self.outcome(key, 0)]

    def grades(self, key: str, sample: int, checks: Sequence[Check]) -> dict[str, Outcome]:
        """The grader replies about one sample, by check name (checks without one left out)."""
        return {
            c.name: self.graded[(key, sample, c.name)]
            for c in checks
            if (key, sample, c.name) in self.graded
        }

    def checked_json(self) -> list[list[Any]]:
        """The kept check results as JSON rows, for xdist followers: [key, sample, judge
        problem or None, [[check name, passed, expected, got], ...] or None]."""
        rows: list[list[Any]] = []
        for (key, sample), got in self.checked.items():
            if isinstance(got, JudgeError):
                rows.append([key, sample, str(got), None])
            else:
                results = [[r.check.name, r.passed, r.expected, r.got] for r in got]
                rows.append([key, sample, None, results])
        return rows

    def adopt_checked(self, rows: Sequence[list[Any]]) -> None:
        """Keep the fetching worker's check results (checked_json rows), so that no check
        runs twice under xdist; kept() matches them to the item's checks."""
        for key, sample, problem, results in rows:
            self.adopted[(key, sample)] = (problem, results)

    def kept(
        self, key: str, sample: int, checks: Sequence[Check]
    ) -> list[CheckResult] | JudgeError | None:
        """The results the prefetch kept for one sample, or None when it checked none."""
        if (key, sample) in self.checked:
            return self.checked[(key, sample)]
        adopted = self.adopted.get((key, sample))
        if adopted is None:
            return None
        problem, results = adopted
        if problem is not None:
            return JudgeError(problem)
        by_name = {check.name: check for check in checks}
        if [row[0] for row in results] != [check.name for check in checks]:
            return None  # another worker's checks differ: check here instead
        return [
            CheckResult(by_name[name], passed, expected, got)
            for name, passed, expected, got in results
        ]


@dataclass
class Counts:
    """What the summary reports about requests (seconds and US dollars where named so)."""

    replayed: int = 0
    missing: int = 0
    deduplicated: int = 0
    prefetch_seconds: float = 0.0
    drift: list[str] = field(default_factory=list)
    # Recordings that could not be saved, or responses not journaled: file and reason.
    unsaved: list[str] = field(default_factory=list)
    # Grader calls of judge checks sent by this run (also inside the engine's totals).
    judge_calls: int = 0
    judge_prompt_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float = 0.0
    judge_unknown: int = 0  # grader replies without usage or cost
    warnings: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """The figures of the terminal summary and the reports, written by the prefetch."""

    counts: Counts = field(default_factory=Counts)
    engine_stats: EngineStats = field(default_factory=EngineStats)
    pruned: list[str] = field(default_factory=list)  # recording entries dropped by rewrite
    fatal: str | None = None  # the error that stopped the run, redacted
    prefetched: bool = False


__all__ = ["RUN_KEY", "Collection", "Counts", "FetchResults", "Summary"]
