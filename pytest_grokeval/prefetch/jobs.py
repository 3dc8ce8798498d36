"""What the prefetch is asked to fetch: one job per test, and the recording keys of judges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_grokeval.checks.registry import Check
from pytest_grokeval.data import ChatRequest


@dataclass(frozen=True)
class Job:
    """What one test needs fetched: its samples, and the checks that decide when to stop."""

    key: str  # the item's node id
    name: str  # the item's name inside its file: the recording key
    suite: Path  # the file whose recordings hold it
    requests: tuple[ChatRequest, ...]
    checks: tuple[Check, ...] = ()
    min_pass_rate: float = 1.0  # the fraction of samples that must pass, 0.0 to 1.0


def grader_name(name: str, check: Check) -> str:
    """The recording key of a judge's replies about one item: 'case judge'."""
    return f"{name} {check.name}"
