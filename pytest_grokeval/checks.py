"""The expectation registry: one small function per check, in the one table that collection,
the YAML items, ``expect()`` and the README all read from."""

from __future__ import annotations

import difflib
import importlib
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from pytest_grokeval.data import Completion, Outcome
from pytest_grokeval.judge import Rubric, parse_rubric, verdict
from pytest_grokeval.messages import describe_response, plural, shorten

# Quoted values inside "expected"/"got" stay short; the whole response follows them anyway.
_VALUE_LIMIT = 120


class ExpectError(ValueError):
    """A bad ``expect:`` entry, found at collection."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the exception picklable (xdist) despite the two-argument constructor.
        return (type(self), (self.key, str(self)))


class _Undecided(Exception):
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
class _Site:
    """Where an argument is parsed: the check name as written, for messages that name it."""

    name: str
    argument: str
    import_paths: Sequence[Path]

    def bad(self, value: Any) -> ExpectError:
        message = f"check {self.name!r} takes {self.argument}, got {_brief(value)}"
        return ExpectError(self.name, message)

    def error(self, message: str) -> ExpectError:
        return ExpectError(self.name, f"check {self.name!r}: {message}")


@dataclass(frozen=True)
class CheckDef:
    """A check in the registry: how to validate its argument, run it and describe it."""

    name: str
    summary: str  # one line for the docs: the response passes when it ...
    argument: str  # one line for the docs and for "check 'x' takes <argument>, got ..."
    parse: Callable[[Any, _Site], tuple[Any, Any]]  # raw argument -> (arg, state)
    run: Runner  # on the state
    describe: Callable[[Any, bool], str]  # (arg, negated) -> the expected text
    # not_<name> passes when this runner fails; None means `run`. List checks set it so that
    # not_contains [a, b] means "contains none of them", which is what a user writing it means.
    negate: Runner | None = None
    # The check reads a grader's reply: run_checks is given it as `graded`, keyed by check name.
    needs_grader: bool = False


def parse_expect(
    expect: Mapping[str, Any], *, import_paths: Sequence[Path] = ()
) -> tuple[Check, ...]:
    """Validate every entry of an ``expect:`` mapping; raise ExpectError for the first bad one."""
    if not isinstance(expect, Mapping):
        raise ExpectError(
            "expect", f"expect must be a mapping of check name to argument, got {_brief(expect)}"
        )
    return tuple(_parse_one(name, raw, import_paths) for name, raw in expect.items())


def _parse_one(name: Any, raw: Any, import_paths: Sequence[Path]) -> Check:
    if not isinstance(name, str):
        raise ExpectError(str(name), f"check names are strings, got {name!r}")
    negated = name.startswith("not_")
    base = name.removeprefix("not_")
    definition = CHECKS.get(base)
    if definition is None:
        raise ExpectError(name, _unknown(name))
    arg, state = definition.parse(raw, _Site(name, definition.argument, import_paths))
    return Check(name=name, base=base, negated=negated, arg=arg, _state=state)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, check_names(), n=1)
    if close:
        return f"unknown check {name!r}; did you mean {close[0]!r}?"
    return f"unknown check {name!r}; see the README for the list of checks"


def run_checks(
    checks: Sequence[Check], response: Completion, graded: Mapping[str, Outcome] | None = None
) -> list[CheckResult]:
    """Run every check on the response; a check that raises is a failed result, not an error.

    ``graded`` holds the grader replies of checks that need one (judge), by check name; a
    grader reply that is no verdict raises JudgeError, which makes the item an error.
    """
    return [_run_one(check, response, graded or {}) for check in checks]


def _run_one(check: Check, response: Completion, graded: Mapping[str, Outcome]) -> CheckResult:
    definition = CHECKS[check.base]
    if definition.needs_grader:
        passed, got = verdict(graded.get(check.name))
        passed = passed != check.negated
        return CheckResult(check, passed, definition.describe(check.arg, check.negated), got)
    try:
        if check.negated:
            passed, got = (definition.negate or definition.run)(check._state, response)
            passed = not passed
        else:
            passed, got = definition.run(check._state, response)
    except _Undecided as exc:
        passed, got = False, str(exc)
    except Exception as exc:  # a user's python check, or a bug: fail this check, run the rest
        passed, got = False, f"raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
    return CheckResult(check, passed, definition.describe(check.arg, check.negated), got)


def failure_message(results: Sequence[CheckResult], response: Completion) -> str | None:
    """None when all passed; else the failed checks, expected vs got, and the response."""
    failed = [result for result in results if not result.passed]
    if not failed:
        return None
    names = ", ".join(result.check.name for result in failed)
    count = plural(len(failed), "check") if len(failed) > 1 else "check"
    lines = [f"{count} failed: {names}"]
    # Names are padded to one width so that every expected and got value starts in one column.
    width = max(len(result.check.name) for result in failed) + 1
    for result in failed:
        label = f"  {result.check.name + ':':<{width}} expected "
        margin = " " * len(label)
        lines.append(label + _indent(result.expected, margin))
        lines.append(margin[:-4] + "got " + _indent(result.got, margin))
    return "\n".join(lines) + "\n\n" + describe_response(response)


def expect(response: Completion, **checks: Any) -> None:
    """Run YAML-style checks on a response; raise AssertionError naming every failed check."""
    __tracebackhide__ = True
    if not checks:
        raise ExpectError("expect", "expect() needs at least one check, e.g. contains='Paris'")
    parsed = parse_expect(checks)
    if any(CHECKS[check.base].needs_grader for check in parsed):
        raise ExpectError("judge", "judge needs a grader call and runs in YAML suites only")
    message = failure_message(run_checks(parsed, response), response)
    if message is not None:
        raise AssertionError(message)


def check_names() -> list[str]:
    """Every valid check name, ``not_`` forms included, sorted."""
    return sorted([*CHECKS, *(f"not_{name}" for name in CHECKS)])


# --- shared argument parsers -----------------------------------------------------------------


def _strings(raw: Any, site: _Site) -> tuple[str, ...]:
    """A string or a non-empty list of them; numbers count as their text, as in promptfoo."""
    if not isinstance(raw, list | tuple):
        return (_string(raw, site),)
    if not raw:
        raise site.bad(raw)
    for item in raw:
        if not _is_text(item):
            raise site.error(f"list items must be strings, got {_brief(item)}")
    return tuple(_string(item, site) for item in raw)


def _string(raw: Any, site: _Site, *, empty_ok: bool = False) -> str:
    if not _is_text(raw):
        raise site.bad(raw)
    if raw == "" and not empty_ok:
        # It passes every response, so it is almost surely an unfilled variable or a slip.
        raise site.error("an empty string matches every response")
    return str(raw)


def _is_text(raw: Any) -> bool:
    return isinstance(raw, str | int | float) and not isinstance(raw, bool)


def _same(value: Any) -> tuple[Any, Any]:
    return value, value


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


def _needle_parser(fold: bool) -> Callable[[Any, _Site], tuple[Any, Any]]:
    def parse(raw: Any, site: _Site) -> tuple[Any, Any]:
        shown = _strings(raw, site)
        sought = tuple(s.casefold() for s in shown) if fold else shown
        return shown, _Needles(shown, sought, fold)

    return parse


def _contains_all(needles: _Needles, response: Completion) -> Verdict:
    found, missing = needles.split(response.text)
    return (False, f"{_quote_all(missing)} not found") if missing else _found(found)


def _contains_any(needles: _Needles, response: Completion) -> Verdict:
    found, missing = needles.split(response.text)
    return _found(found) if found else (False, f"{_quote_all(missing)} not found")


def _found(found: list[str]) -> Verdict:
    return True, f"found {_quote_all(found)}"


def _contains_text(every: bool, fold: bool) -> Callable[[Any, bool], str]:
    def describe(arg: tuple[str, ...], negated: bool) -> str:
        case = " (ignoring case)" if fold else ""
        if len(arg) == 1:
            return f"{'does not contain' if negated else 'contains'} {_quote(arg[0])}{case}"
        quantity = "none" if negated else "all" if every else "any"
        return f"contains {quantity} of {_quote_all(arg)}{case}"

    return describe


# --- regex -----------------------------------------------------------------------------------


def _parse_regex(raw: Any, site: _Site) -> tuple[Any, Any]:
    patterns = _strings(raw, site)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise site.error(f"pattern {pattern!r} does not compile: {exc}") from None
    return patterns, tuple(compiled)


def _regex_all(patterns: tuple[re.Pattern[str], ...], response: Completion) -> Verdict:
    missing = [p.pattern for p in patterns if p.search(response.text) is None]
    if missing:
        return False, f"no match for {_quote_all(missing)}"
    return _regex_any(patterns, response)


def _regex_any(patterns: tuple[re.Pattern[str], ...], response: Completion) -> Verdict:
    hits = []
    for pattern in patterns:
        match = pattern.search(response.text)
        if match is not None:
            what = f"matched {_quote(match.group())} at char {match.start()}"
            hits.append(what if len(patterns) == 1 else f"{_quote(pattern.pattern)} {what}")
    if not hits:
        return False, f"no match for {_quote_all([p.pattern for p in patterns])}"
    return True, "; ".join(hits)


def _describe_regex(arg: tuple[str, ...], negated: bool) -> str:
    if len(arg) == 1:
        return f"{'does not match' if negated else 'matches'} {_quote(arg[0])}"
    return f"matches {'none' if negated else 'all'} of {_quote_all(arg)}"


# --- equals, starts_with, ends_with ----------------------------------------------------------


def _parse_equals(raw: Any, site: _Site) -> tuple[Any, Any]:
    return _same(_string(raw, site, empty_ok=True).strip())


def _parse_affix(raw: Any, site: _Site) -> tuple[Any, Any]:
    return _same(_string(raw, site))


def _equals(expected: str, response: Completion) -> Verdict:
    text = response.text.strip()
    return text == expected, _quote(text)


def _starts_with(prefix: str, response: Completion) -> Verdict:
    text = response.text.strip()
    head = text[: len(prefix)]
    return text.startswith(prefix), f"starts with {_quote(head)}" if text else "an empty response"


def _ends_with(suffix: str, response: Completion) -> Verdict:
    text = response.text.strip()
    tail = text[max(len(text) - len(suffix), 0) :]
    return text.endswith(suffix), f"ends with {_quote(tail)}" if text else "an empty response"


def _affix_text(verb: str, negated_verb: str) -> Callable[[Any, bool], str]:
    return lambda arg, negated: f"{negated_verb if negated else verb} {_quote(arg)}"


# --- length, words, lines, latency_ms, cost_usd, tokens --------------------------------------


def _number(n: float) -> str:
    return str(int(n)) if n == int(n) else f"{n:g}"


@dataclass(frozen=True)
class _Quantity:
    verb: str  # the expected text reads "has at most 400 chars", "took at most 900 ms"
    show: Callable[[float], str]  # a value with its unit: "400 chars"
    measure: Callable[[Completion], float]
    integral: bool = True  # counts take ints only
    bare_is_max: bool = False  # a bare number is the maximum rather than the exact value
    number: Callable[[float], str] = _number  # a value alone: "between 10 and 400 chars"
    less: str = "fewer than"
    # The got text, when more than the measured value helps: tokens show in + out.
    detail: Callable[[Completion], str] | None = None


def _range_check(name: str, q: _Quantity, summary: str) -> CheckDef:
    kind = "an int" if q.integral else "a number"
    return CheckDef(
        name=name,
        summary=summary,
        argument=f"{kind} or a mapping with 'min' and/or 'max'",
        parse=_range_parser(q, kind),
        run=_range_runner(q),
        describe=_range_text(q),
    )


def _range_parser(q: _Quantity, kind: str) -> Callable[[Any, _Site], tuple[Any, Any]]:
    number_types: tuple[type, ...] = (int,) if q.integral else (int, float)

    def is_number(raw: Any) -> bool:
        return isinstance(raw, number_types) and not isinstance(raw, bool)

    def parse(raw: Any, site: _Site) -> tuple[Any, Any]:
        if is_number(raw):
            bounds = {"max": raw} if q.bare_is_max else {"min": raw, "max": raw}
        elif isinstance(raw, Mapping) and raw:
            unknown = [key for key in raw if key not in ("min", "max")]
            if unknown:
                raise site.error(f"unknown key {unknown[0]!r}; allowed keys are 'min' and 'max'")
            bounds = {key: raw[key] for key in ("min", "max") if key in raw}
        else:
            raise site.bad(raw)
        for key, bound in bounds.items():
            if not is_number(bound) or not 0 <= bound < math.inf:  # rejects NaN too
                raise site.error(f"{key!r} must be {kind} >= 0, got {_brief(bound)}")
        if bounds.get("min", 0) > bounds.get("max", math.inf):
            raise site.error(f"'min' ({bounds['min']}) is greater than 'max' ({bounds['max']})")
        return _same(bounds)

    return parse


def _range_runner(q: _Quantity) -> Runner:
    def run(bounds: dict[str, float], response: Completion) -> Verdict:
        measured = q.measure(response)
        passed = bounds.get("min", 0) <= measured <= bounds.get("max", math.inf)
        return passed, q.detail(response) if q.detail else q.show(measured)

    return run


def _range_text(q: _Quantity) -> Callable[[Any, bool], str]:
    def describe(bounds: dict[str, float], negated: bool) -> str:
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and high is not None:
            if low == high:
                text = f"{'not ' if negated else ''}exactly {q.show(low)}"
            elif negated:
                text = f"{q.less} {q.number(low)} or more than {q.show(high)}"
            else:
                text = f"between {q.number(low)} and {q.show(high)}"
        elif high is not None:
            text = f"more than {q.show(high)}" if negated else f"at most {q.show(high)}"
        else:
            text = f"{q.less} {q.show(low or 0)}" if negated else f"at least {q.show(low or 0)}"
        return f"{q.verb} {text}"

    return describe


def _counted(word: str) -> Callable[[float], str]:
    return lambda n: plural(int(n), word)


def _milliseconds(n: float) -> str:
    return f"{n:.1f}".removesuffix(".0") + " ms"


def _usd(n: float) -> str:
    return f"${n:.6g}"


def _cost(response: Completion) -> float:
    if response.cost_usd is None:
        raise _Undecided("no cost reported")
    return response.cost_usd


def _count_chars(response: Completion) -> int:
    return len(response.text)


def _count_words(response: Completion) -> int:
    return len(response.text.split())


def _count_lines(response: Completion) -> int:
    return sum(1 for line in response.text.splitlines() if line.strip())


def _latency(response: Completion) -> float:
    return response.latency_ms


def _tokens(response: Completion) -> int:
    return response.usage.total_tokens


def _tokens_in_out(response: Completion) -> str:
    usage = response.usage
    return (
        f"{plural(usage.total_tokens, 'token')} "
        f"({usage.prompt_tokens} in + {usage.output_tokens} out)"
    )


_LENGTH = _Quantity("has", _counted("char"), _count_chars)
_WORDS = _Quantity("has", _counted("word"), _count_words)
_LINES = _Quantity("has", _counted("non-empty line"), _count_lines)
_LATENCY = _Quantity(
    "took", _milliseconds, _latency, integral=False, bare_is_max=True, less="less than"
)
_COST = _Quantity(
    "cost", _usd, _cost, integral=False, bare_is_max=True, number=_usd, less="less than"
)
_TOKENS = _Quantity("used", _counted("token"), _tokens, bare_is_max=True, detail=_tokens_in_out)


# --- json, json_schema -----------------------------------------------------------------------

# The whole response is one fenced block, as models often wrap JSON; anything else is parsed raw.
_FENCE = re.compile(
    r"\A\s*```(?:json)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE
)


def _load_json(text: str) -> tuple[Any, str]:
    """The parsed value and where it came from; _NotJson when it does not parse."""
    fence = _FENCE.match(text)
    if fence is not None and "```" not in fence.group(1):
        text, where = fence.group(1), " (in a ``` fence)"
    else:
        where = ""
    try:
        return json.loads(text), where
    except ValueError as exc:
        raise _NotJson(f"not JSON: {exc}") from None


class _NotJson(Exception):
    pass


def _parse_json(raw: Any, site: _Site) -> tuple[Any, Any]:
    if raw is True:
        return _same(True)
    if raw is False:
        hint = "use json" if site.name.startswith("not_") else "use not_json"
        raise ExpectError(site.name, f"check {site.name!r} takes true, got False; {hint}")
    raise site.bad(raw)


def _describe_json(_: Any, negated: bool) -> str:
    return "does not parse as JSON" if negated else "parses as JSON"


def _json(_: Any, response: Completion) -> Verdict:
    try:
        value, where = _load_json(response.text)
    except _NotJson as exc:
        return False, str(exc)
    return True, f"parsed {_json_kind(value)}{where}"


def _json_kind(value: Any) -> str:
    kinds = {
        dict: "a JSON object",
        list: "a JSON array",
        str: "a JSON string",
        bool: "a JSON boolean",
        type(None): "JSON null",
    }
    return kinds.get(type(value), "a JSON number")


def _parse_schema(raw: Any, site: _Site) -> tuple[Any, Any]:
    if not isinstance(raw, Mapping):
        raise site.bad(raw)
    schema = dict(raw)
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise site.error(f"invalid schema: {exc.message} at {exc.json_path}") from None
    return schema, cls(schema, format_checker=cls.FORMAT_CHECKER)


def _json_schema(validator: Validator, response: Completion) -> Verdict:
    # not_json_schema passes both on text that is not JSON and on JSON that does not validate.
    try:
        value, _ = _load_json(response.text)
    except _NotJson as exc:
        return False, str(exc)
    errors = list(validator.iter_errors(value))
    error = best_match(errors)
    if error is None:
        return True, "valid against the schema"
    more = f" (and {plural(len(errors) - 1, 'more error')})" if len(errors) > 1 else ""
    return False, f"{_clip(error.message)} at {error.json_path}{more}"


def _describe_schema(schema: Any, negated: bool) -> str:
    verb = "does not parse as" if negated else "parses as"
    return f"{verb} JSON valid against the schema {_brief(schema)}"


# --- python ----------------------------------------------------------------------------------

_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def _parse_python(raw: Any, site: _Site) -> tuple[Any, Any]:
    if not isinstance(raw, str) or not _REFERENCE.fullmatch(raw):
        raise site.bad(raw)
    module_name, _, attribute = raw.partition(":")
    added = [str(path) for path in site.import_paths]
    sys.path[:0] = added
    try:
        importlib.invalidate_caches()  # the module may have been written during this session
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise site.error(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise site.error(f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    finally:
        for path in added:
            if path in sys.path:
                sys.path.remove(path)
    function: Any = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise site.error(f"{module_name!r} has no attribute {attribute!r}")
        function = getattr(function, part)
    if not callable(function):
        raise site.error(f"{raw!r} is not callable (it is {type(function).__name__})")
    return raw, function


def _python(function: Callable[[Completion], Any], response: Completion) -> Verdict:
    result = function(response)
    if result is True or result is None:
        return True, f"returned {result}"
    if result is False:
        return False, "returned False"
    if isinstance(result, str):
        return False, _clip(result)
    raise _Undecided(
        f"returned {_brief(result)}; a python check returns True, None, False or a message"
    )


def _describe_python(reference: str, negated: bool) -> str:
    return f"is {'rejected' if negated else 'accepted'} by {reference}"


# --- finish_reason ---------------------------------------------------------------------------


def _parse_finish_reason(raw: Any, site: _Site) -> tuple[Any, Any]:
    if not isinstance(raw, str) or not raw:
        raise site.bad(raw)
    return _same(raw)


def _finish_reason(expected: str, response: Completion) -> Verdict:
    return response.finish_reason == expected, f"finished with {response.finish_reason!r}"


def _describe_finish_reason(expected: str, negated: bool) -> str:
    return f"finished with {'anything but ' if negated else ''}{expected!r}"


# --- the registry ----------------------------------------------------------------------------

_STRINGS = "a string or a list of strings"

# A check that needs a grader call (judge) will add a field here saying so, and the engine will
# send that call during the prefetch; the runners above stay pure functions of the response.
# --- judge -----------------------------------------------------------------------------------


def _parse_judge(raw: Any, site: _Site) -> tuple[Any, Any]:
    try:
        rubric = parse_rubric(raw)
    except ValueError:
        raise site.bad(raw) from None
    return {"rubric": rubric.rubric, "model": rubric.model}, rubric


def _judge(rubric: Rubric, response: Completion) -> Verdict:
    raise AssertionError("judge runs through its grader reply")  # pragma: no cover


def _describe_judge(arg: Any, negated: bool) -> str:
    meets = "does not meet" if negated else "meets"
    return f"the judge says the response {meets} {_quote(arg['rubric'])}"


_DEFS = [
    CheckDef(
        name="contains",
        summary="contains every string (case-sensitive); not_contains: none of them",
        argument=_STRINGS,
        parse=_needle_parser(fold=False),
        run=_contains_all,
        describe=_contains_text(every=True, fold=False),
        negate=_contains_any,
    ),
    CheckDef(
        name="icontains",
        summary="contains every string, ignoring case; not_icontains: none of them",
        argument=_STRINGS,
        parse=_needle_parser(fold=True),
        run=_contains_all,
        describe=_contains_text(every=True, fold=True),
        negate=_contains_any,
    ),
    CheckDef(
        name="contains_any",
        summary="contains at least one of the strings (case-sensitive)",
        argument=_STRINGS,
        parse=_needle_parser(fold=False),
        run=_contains_any,
        describe=_contains_text(every=False, fold=False),
    ),
    CheckDef(
        name="icontains_any",
        summary="contains at least one of the strings, ignoring case",
        argument=_STRINGS,
        parse=_needle_parser(fold=True),
        run=_contains_any,
        describe=_contains_text(every=False, fold=True),
    ),
    CheckDef(
        name="regex",
        summary="re.search finds every pattern (Python syntax; (?i) ignores case); "
        "not_regex: none of them",
        argument="a pattern or a list of patterns",
        parse=_parse_regex,
        run=_regex_all,
        describe=_describe_regex,
        negate=_regex_any,
    ),
    CheckDef(
        name="equals",
        summary="equals the string, both stripped of outer white space",
        argument="a string",
        parse=_parse_equals,
        run=_equals,
        describe=_affix_text("equals", "does not equal"),
    ),
    CheckDef(
        name="starts_with",
        summary="starts with the string, once its outer white space is stripped",
        argument="a string",
        parse=_parse_affix,
        run=_starts_with,
        describe=_affix_text("starts with", "does not start with"),
    ),
    CheckDef(
        name="ends_with",
        summary="ends with the string, once its outer white space is stripped",
        argument="a string",
        parse=_parse_affix,
        run=_ends_with,
        describe=_affix_text("ends with", "does not end with"),
    ),
    _range_check(
        "length",
        _LENGTH,
        "has that many characters, counted on the text as returned (not stripped); "
        "a bare int is the exact count",
    ),
    _range_check(
        "words",
        _WORDS,
        "has that many words (split on white space); a bare int is the exact count",
    ),
    _range_check("lines", _LINES, "has that many non-empty lines; a bare int is the exact count"),
    CheckDef(
        name="json",
        summary="parses as JSON; a response that is exactly one ```json fenced block counts",
        argument="true",
        parse=_parse_json,
        run=_json,
        describe=_describe_json,
    ),
    CheckDef(
        name="json_schema",
        summary="parses as JSON (same fence rule) and validates against the schema; "
        "not_json_schema passes when either fails",
        argument="a JSON Schema mapping",
        parse=_parse_schema,
        run=_json_schema,
        describe=_describe_schema,
    ),
    CheckDef(
        name="python",
        summary="function(response) returns True or None; False fails, and so does a string, "
        "which is the message",
        argument="'module:function'",
        parse=_parse_python,
        run=_python,
        describe=_describe_python,
    ),
    CheckDef(
        name="finish_reason",
        summary="the API's finish reason equals it ('stop', 'length', ...)",
        argument="a string",
        parse=_parse_finish_reason,
        run=_finish_reason,
        describe=_describe_finish_reason,
    ),
    _range_check(
        "latency_ms",
        _LATENCY,
        "the request took that many milliseconds; a bare number is the maximum",
    ),
    _range_check(
        "cost_usd",
        _COST,
        "the response cost that many US dollars (fails when the API reported no cost); "
        "a bare number is the maximum",
    ),
    _range_check(
        "tokens",
        _TOKENS,
        "used that many tokens in all (prompt and output); a bare int is the maximum",
    ),
    CheckDef(
        name="judge",
        summary="a Grok grader call, given the rubric and the response, answers pass "
        "(model: the grader, default the ini grok_judge_model or --grok-model)",
        argument="a rubric string or a mapping with 'rubric' and optional 'model'",
        parse=_parse_judge,
        run=_judge,
        describe=_describe_judge,
        needs_grader=True,
    ),
]
CHECKS: Mapping[str, CheckDef] = MappingProxyType({d.name: d for d in _DEFS})


# --- text ------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return shorten(text, _VALUE_LIMIT)


def _quote_all(texts: Iterable[str]) -> str:
    return ", ".join(_quote(text) for text in texts)


def _brief(value: Any, limit: int = 80) -> str:
    """repr() for messages about arguments, cut short for big mappings."""
    return _clip(repr(value), limit)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + prefix)
