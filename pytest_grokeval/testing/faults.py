"""Fault rules: which model requests get a test's `Reply` instead of the normal answer.

A rule matches by position (`every` n-th request overall, the `first` n requests it sees),
by prompt substring (`match`), and stops after `times` answers. The first matching rule wins.
The command line writes rules as ``key=value,...`` specs (`parse_fault_spec`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from pytest_grokeval.optionvalues import count, delay

from .replies import Reply


@dataclass
class FaultRule:
    """One rule; `every`, `first` and `times` must be at least 1 (ValueError otherwise)."""

    reply: Reply
    every: int | None = None
    first: int | None = None
    match: str | None = None
    times: int | None = None
    seen: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        for name in ("every", "first", "times"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"fault {name}={value!r} must be at least 1")

    def observe(self, index: int, prompt: str) -> bool:
        """Count the request toward `first`; say whether this rule would answer it."""
        if self.match is not None and self.match not in prompt:
            return False
        position = self.seen
        self.seen += 1
        if self.first is not None and position >= self.first:
            return False
        if self.every is not None and (index + 1) % self.every:
            return False
        return self.times is None or self.applied < self.times


class FaultBook:
    """The server's rules, safe to change from a test thread while requests arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        """Add a rule after the existing ones."""
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def pick(self, index: int, prompt: str) -> Reply | None:
        """The reply of the first rule that answers request `index`, or None."""
        with self._lock:
            # Every rule observes every request, so `first` means the first requests overall.
            answering = [rule for rule in self._rules if rule.observe(index, prompt)]
            if not answering:
                return None
            answering[0].applied += 1
            return answering[0].reply


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(f"expected 1/0/true/false, got {text!r}")


RULE_KEYS: dict[str, Callable[[str], Any]] = {
    "every": count,
    "first": count,
    "match": str,
    "times": count,
}
# Every scalar Reply field; headers, usage and tool_calls need the Python API. No figure of a
# reply is negative; a status is any integer (99 makes an invalid status line on purpose).
_PARSERS: dict[str, Callable[[str], Any]] = {"int": count, "float": delay, "bool": _flag}
REPLY_KEYS: dict[str, Callable[[str], Any]] = {
    item.name: _PARSERS.get(str(item.type).split(" | ")[0], str)
    for item in fields(Reply)
    if item.name not in ("headers", "usage", "tool_calls")
}


class FaultSpecError(ValueError):
    """A ``--fault`` spec that does not parse; the message names the spec and the key."""


def parse_fault_spec(spec: str) -> FaultRule:
    """A rule from ``key=value,...``, e.g. ``every=3,status=429,retry_after=1``.

    Raises FaultSpecError naming the bad item and the allowed keys.
    """
    rule: dict[str, Any] = {}
    reply: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, equals, value = item.partition("=")
        key = key.strip()
        table, target = (RULE_KEYS, rule) if key in RULE_KEYS else (REPLY_KEYS, reply)
        if not equals or key not in table:
            allowed = ", ".join([*RULE_KEYS, *REPLY_KEYS])
            raise FaultSpecError(
                f"fault {spec!r}: {item!r} is not key=value with a key among: {allowed}"
            )
        try:
            target[key] = table[key](value.strip())
        except ValueError as exc:
            raise FaultSpecError(f"fault {spec!r}: {key}: {exc}") from None
    if not reply:
        keys = ", ".join(REPLY_KEYS)
        raise FaultSpecError(f"fault {spec!r} says when but not what to answer: add one of {keys}")
    try:
        return FaultRule(Reply(**reply), **rule)
    except ValueError as exc:
        raise FaultSpecError(f"fault {spec!r}: {exc}") from None
