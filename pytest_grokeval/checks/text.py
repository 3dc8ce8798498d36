"""The checks that read the response text: contains and its case and any forms, regex, equals,
starts_with and ends_with."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.checks.base import Site, Verdict, brief, quote, same
from pytest_grokeval.data import Completion

# --- shared argument parsers -----------------------------------------------------------------


def _strings(raw: Any, site: Site) -> tuple[str, ...]:
    """A string or a non-empty list of them; numbers count as their text, as in promptfoo."""
    if not isinstance(raw, list | tuple):
        return (_string(raw, site),)
    if not raw:
        raise site.bad(raw)
    for item in raw:
        if not _is_text(item):
            raise site.error(f"list items must be strings, got {brief(item)}")
    return tuple(_string(item, site) for item in raw)


def _string(raw: Any, site: Site, *, empty_ok: bool = False) -> str:
    if not _is_text(raw):
        raise site.bad(raw)
    if raw == "" and not empty_ok:
        # It passes every response, so it is almost surely an unfilled variable or a slip.
        raise site.error("an empty string matches every response")
    return str(raw)


def _is_text(raw: Any) -> bool:
    return isinstance(raw, str | int | float) and not isinstance(raw, bool)


def _quote_all(texts: Iterable[str]) -> str:
    return ", ".join(quote(text) for text in texts)


# --- contains, icontains, contains_any, icontains_any ----------------------------------------


@dataclass(frozen=True)
class _Needles:
    shown: tuple[str, ...]
    sought: tuple[str, ...]
    fold: bool

    def split(self, text: str) -> tuple[list[str], list[str]]:
        """The needles found in the text, and those missing, as the user wrote them."""
        haystack = text.casefold() if self.fold else text
        found = [
            shown
            for shown, sought in zip(self.shown, self.sought, strict=True)
            if sought in haystack
        ]
        return found, [shown for shown in self.shown if shown not in found]


def needle_parser(fold: bool) -> Callable[[Any, Site], tuple[Any, Any]]:
    """The parser of the contains family; ``fold`` ignores case."""

    def parse(raw: Any, site: Site) -> tuple[Any, Any]:
        shown = _strings(raw, site)
        sought = tuple(s.casefold() for s in shown) if fold else shown
        return shown, _Needles(shown, sought, fold)

    return parse


def contains_all(needles: _Needles, response: Completion) -> Verdict:
    """Passes when every needle is in the response."""
    found, missing = needles.split(response.text)
    return (False, f"{_quote_all(missing)} not found") if missing else _found(found)


def contains_any(needles: _Needles, response: Completion) -> Verdict:
    """Passes when at least one needle is in the response."""
    found, missing = needles.split(response.text)
    return _found(found) if found else (False, f"{_quote_all(missing)} not found")


def _found(found: list[str]) -> Verdict:
    return True, f"found {_quote_all(found)}"


def contains_text(every: bool, fold: bool) -> Callable[[Any, bool], str]:
    """The describer of the contains family."""

    def describe(arg: tuple[str, ...], negated: bool) -> str:
        case = " (ignoring case)" if fold else ""
        if len(arg) == 1:
            return f"{'does not contain' if negated else 'contains'} {quote(arg[0])}{case}"
        quantity = "none" if negated else "all" if every else "any"
        return f"contains {quantity} of {_quote_all(arg)}{case}"

    return describe


# --- regex -----------------------------------------------------------------------------------


def parse_regex(raw: Any, site: Site) -> tuple[Any, Any]:
    """The patterns as written, and compiled."""
    patterns = _strings(raw, site)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise site.error(f"pattern {pattern!r} does not compile: {exc}") from None
    return patterns, tuple(compiled)


def regex_all(patterns: tuple[re.Pattern[str], ...], response: Completion) -> Verdict:
    """Passes when every pattern matches somewhere in the response."""
    missing = [p.pattern for p in patterns if p.search(response.text) is None]
    if missing:
        return False, f"no match for {_quote_all(missing)}"
    return regex_any(patterns, response)


def regex_any(patterns: tuple[re.Pattern[str], ...], response: Completion) -> Verdict:
    """Passes when at least one pattern matches somewhere in the response."""
    hits = []
    for pattern in patterns:
        match = pattern.search(response.text)
        if match is not None:
            what = f"matched {quote(match.group())} at char {match.start()}"
            hits.append(what if len(patterns) == 1 else f"{quote(pattern.pattern)} {what}")
    if not hits:
        return False, f"no match for {_quote_all([p.pattern for p in patterns])}"
    return True, "; ".join(hits)


def describe_regex(arg: tuple[str, ...], negated: bool) -> str:
    """The expected text of regex."""
    if len(arg) == 1:
        return f"{'does not match' if negated else 'matches'} {quote(arg[0])}"
    return f"matches {'none' if negated else 'all'} of {_quote_all(arg)}"


# --- equals, starts_with, ends_with ----------------------------------------------------------


def parse_equals(raw: Any, site: Site) -> tuple[Any, Any]:
    """A string, empty allowed, stripped as the response is."""
    return same(_string(raw, site, empty_ok=True).strip())


def parse_affix(raw: Any, site: Site) -> tuple[Any, Any]:
    """A non-empty string."""
    return same(_string(raw, site))


def equals(expected: str, response: Completion) -> Verdict:
    """Passes when the stripped response is the string."""
    text = response.text.strip()
    return text == expected, quote(text)


def starts_with(prefix: str, response: Completion) -> Verdict:
    """Passes when the stripped response starts with the prefix."""
    text = response.text.strip()
    head = text[: len(prefix)]
    return text.startswith(prefix), f"starts with {quote(head)}" if text else "an empty response"


def ends_with(suffix: str, response: Completion) -> Verdict:
    """Passes when the stripped response ends with the suffix."""
    text = response.text.strip()
    tail = text[max(len(text) - len(suffix), 0) :]
    return text.endswith(suffix), f"ends with {quote(tail)}" if text else "an empty response"


def affix_text(verb: str, negated_verb: str) -> Callable[[Any, bool], str]:
    """The describer of equals, starts_with and ends_with."""
    return lambda arg, negated: f"{negated_verb if negated else verb} {quote(arg)}"
