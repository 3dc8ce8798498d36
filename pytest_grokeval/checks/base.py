"""The building blocks every check is made of: the check and result types, the registry entry,
and the few text helpers that keep their messages in one style."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_grokeval.data import Completion
from pytest_grokeval.messages import shorten

# Quoted values inside "expected"/"got" stay short; the whole response follows them anyway.
_VALUE_LIMIT = 120


class ExpectError(ValueError):
    """A bad ``expect:`` entry, found at collection."""

    # Tracebacks and pickles name it where users import it from, as before checks.py was split.
    __module__ = "pytest_grokeval"

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the exception picklable (xdist) despite the two-argument constructor.
        return (type(self), (self.key, str(self)))


class Undecided(Exception):
    """The check cannot tell pass from fail (no cost reported, a bad return value).

    It fails both the check and its ``not_`` form: not knowing is never a pass.
    """


@dataclass(frozen=True)
class Check:
    """One validated ``expect:`` entry."""

    name: str
    base: str
    negated: bool
    arg: Any
    # What the check runs on: compiled patterns, a schema validator, an imported function.
    _state: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one response, in words for the failure message."""

    check: Check
    passed: bool
    expected: str
    got: str


Verdict = tuple[bool, str]  # passed, and what came back in words
Runner = Callable[[Any, Completion], Verdict]


@dataclass(frozen=True)
class Site:
    """Where an argument is parsed: the check name as written, for messages that name it."""

    name: str
    argument: str
    import_paths: Sequence[Path]

    def bad(self, value: Any) -> ExpectError:
        """The ExpectError for an argument of the wrong shape, naming what the check takes."""
        message = f"check {self.name!r} takes {self.argument}, got {brief(value)}"
        return ExpectError(self.name, message)

    def error(self, message: str) -> ExpectError:
        """An ExpectError about this check's argument, prefixed with the check's name."""
        return ExpectError(self.name, f"check {self.name!r}: {message}")


@dataclass(frozen=True)
class CheckDef:
    """A check in the registry: how to validate its argument, run it and describe it."""

    name: str
    summary: str  # one line for the docs: the response passes when it ...
    argument: str  # one line for the docs and for "check 'x' takes <argument>, got ..."
    parse: Callable[[Any, Site], tuple[Any, Any]]  # raw argument -> (arg, state)
    run: Runner  # on the state
    describe: Callable[[Any, bool], str]  # (arg, negated) -> the expected text
    # not_<name> passes when this runner fails; None means `run`. List checks set it so that
    # not_contains [a, b] means "contains none of them", which is what a user writing it means.
    negate: Runner | None = None
    # The check reads a grader's reply: run_checks is given it as `graded`, keyed by check name.
    needs_grader: bool = False
    # The check reads the response text, so on a response without text it and its not_ form
    # fail, saying what came back instead (a refusal, tool calls, a cut-off reasoning reply).
    reads_text: bool = True
    # Its scalar arguments are text: YAML's `1.10` or `12:30` reach it as written, not as the
    # number YAML 1.1 makes of them, and a bool, null or date is an error asking for quotes.
    takes_text: bool = False


def same(value: Any) -> tuple[Any, Any]:
    """The (arg, state) pair of a check that runs on its argument as written."""
    return value, value


# --- text ------------------------------------------------------------------------------------


def quote(text: str) -> str:
    """A value inside "expected"/"got", shortened in the middle when long."""
    return shorten(text, _VALUE_LIMIT)


def brief(value: Any, limit: int = 80) -> str:
    """repr() for messages about arguments, cut short for big mappings."""
    return clip(repr(value), limit)


def clip(text: str, limit: int = 300) -> str:
    """The text, cut at the limit with "..." when longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
