"""The checks on what the API returned beside the text: refusal and tool_call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.checks.base import Site, Verdict, brief, quote, same
from pytest_grokeval.data import Completion, ToolCall
from pytest_grokeval.messages import show_call

# --- refusal ---------------------------------------------------------------------------------


def parse_refusal(raw: Any, site: Site) -> tuple[Any, Any]:
    """true or false."""
    if not isinstance(raw, bool):
        raise site.bad(raw)
    return same(raw)


def refusal(expected: bool, response: Completion) -> Verdict:
    """Passes when the API's refusal field is set (expected true) or not (expected false)."""
    refused = response.refusal is not None
    got = f"a refusal: {quote(response.refusal)}" if response.refusal is not None else "no refusal"
    return refused == expected, got


def describe_refusal(expected: bool, negated: bool) -> str:
    """The expected text of refusal."""
    return "a refusal" if expected != negated else "no refusal"


# --- tool_call -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One expected call: its name, and arguments that the call's must include (None: any)."""

    name: str
    arguments: Mapping[str, Any] | None

    def matches(self, call: ToolCall) -> bool:
        """Whether the call has this name and, when arguments are given, includes them (deeply)."""
        return call.name == self.name and (
            self.arguments is None or _includes(call.arguments, self.arguments)
        )

    def show(self) -> str:
        """The wanted call as messages show it: the name, or name(arguments) cut at 120 chars."""
        if self.arguments is None:
            return self.name
        return show_call(ToolCall(self.name, dict(self.arguments)), 120)


def _includes(actual: Any, expected: Any) -> bool:
    """``expected`` is part of ``actual``: mappings by their keys, recursively; else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _includes(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_includes(a, e) for a, e in zip(actual, expected, strict=True))
        )
    # JSON's true is not 1 and 1 is not true, though Python says they are equal.
    return isinstance(actual, bool) == isinstance(expected, bool) and actual == expected


def parse_tool_call(raw: Any, site: Site) -> tuple[Any, Any]:
    """A name, a ``{name, arguments}`` mapping, or a non-empty list of them."""
    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        raise site.bad(raw)
    wanted = tuple(_wanted(entry, site) for entry in entries)
    return wanted, wanted


def _wanted(entry: Any, site: Site) -> Wanted:
    if isinstance(entry, str) and entry:
        return Wanted(entry, None)
    if not isinstance(entry, Mapping):
        raise site.bad(entry)
    unknown = [key for key in entry if key not in ("name", "arguments")]
    if unknown:
        raise site.error(f"unknown key {unknown[0]!r}; allowed keys are 'name' and 'arguments'")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise site.error(f"each call needs a 'name' string, got {brief(name)}")
    arguments = entry.get("arguments")
    if arguments is not None and not isinstance(arguments, Mapping):
        raise site.error(f"'arguments' must be a mapping, got {brief(arguments)}")
    return Wanted(name, arguments)


def tool_call_all(wanted: tuple[Wanted, ...], response: Completion) -> Verdict:
    """Passes when every expected call matches one of the response's tool calls."""
    missing = [w for w in wanted if not any(w.matches(call) for call in response.tool_calls)]
    if missing:
        return False, _calls(response) + f"; none matches {missing[0].show()}"
    return True, _calls(response)


def tool_call_any(wanted: tuple[Wanted, ...], response: Completion) -> Verdict:
    """Passes when at least one expected call matches one of the response's tool calls."""
    hits = [w for w in wanted if any(w.matches(call) for call in response.tool_calls)]
    if hits:
        return True, _calls(response)
    return False, _calls(response)


def _calls(response: Completion) -> str:
    if not response.tool_calls:
        return "no tool calls"
    return "called " + ", ".join(show_call(call, 120) for call in response.tool_calls)


def describe_tool_call(wanted: tuple[Wanted, ...], negated: bool) -> str:
    """The expected text of tool_call."""
    shown = ", ".join(w.show() for w in wanted)
    if len(wanted) == 1:
        return f"{'no call of' if negated else 'a call of'} {shown}"
    return f"{'none' if negated else 'all'} of the calls {shown}"
