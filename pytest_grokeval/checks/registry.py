"""The expectation registry: one small function per check, in the one table that collection,
the YAML items, ``expect()`` and the README all read from.

The checks themselves live by concern in checks_text, checks_measure and checks_structured;
what they are built of lives in checkbase."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_grokeval.checks.base import (
    Check,
    CheckDef,
    CheckResult,
    ExpectError,
    Runner,
    Site,
    Undecided,
    Verdict,
    brief,
)
from pytest_grokeval.checks.fields import (
    describe_refusal,
    describe_tool_call,
    parse_refusal,
    parse_tool_call,
    refusal,
    tool_call_all,
    tool_call_any,
)
from pytest_grokeval.checks.judge import verdict
from pytest_grokeval.checks.measure import (
    COST,
    LATENCY,
    LENGTH,
    LINES,
    TOKENS,
    WORDS,
    range_check,
)
from pytest_grokeval.checks.structured import (
    describe_finish_reason,
    describe_json,
    describe_judge,
    describe_python,
    describe_schema,
    finish_reason,
    json_schema,
    judge,
    parse_finish_reason,
    parse_json,
    parse_judge,
    parse_python,
    parse_schema,
    python,
    run_json,
)
from pytest_grokeval.checks.text import (
    affix_text,
    contains_all,
    contains_any,
    contains_text,
    describe_regex,
    ends_with,
    equals,
    needle_parser,
    parse_affix,
    parse_equals,
    parse_regex,
    regex_all,
    regex_any,
    starts_with,
)
from pytest_grokeval.data import Completion, Outcome
from pytest_grokeval.messages import describe_response, no_text, plural

__all__ = [
    "CHECKS",
    "Check",
    "CheckDef",
    "CheckResult",
    "ExpectError",
    "Runner",
    "Verdict",
    "check_names",
    "expect",
    "failure_message",
    "parse_expect",
    "run_checks",
    "takes_text",
]


def parse_expect(
    expect: Mapping[str, Any], *, import_paths: Sequence[Path] = ()
) -> tuple[Check, ...]:
    """Validate every entry of an ``expect:`` mapping; raise ExpectError for the first bad one."""
    if not isinstance(expect, Mapping):
        raise ExpectError(
            "expect", f"expect must be a mapping of check name to argument, got {brief(expect)}"
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
    arg, state = definition.parse(raw, Site(name, definition.argument, import_paths))
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
    if definition.reads_text and not response.has_text:
        # Not the empty string: not_contains would pass exactly when the model said nothing.
        return CheckResult(
            check, False, definition.describe(check.arg, check.negated), no_text(response)
        )
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
    except Undecided as exc:
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


def takes_text(name: Any) -> bool:
    """Whether the check named (``not_`` form or not) reads its scalar arguments as text."""
    definition = CHECKS.get(str(name).removeprefix("not_"))
    return definition is not None and definition.takes_text


def check_names() -> list[str]:
    """Every valid check name, ``not_`` forms included, sorted."""
    return sorted([*CHECKS, *(f"not_{name}" for name in CHECKS)])


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + prefix)


# --- the registry ----------------------------------------------------------------------------

_STRINGS = "a string or a list of strings"

# The docs' line of each check, in the order the README lists them: the response passes when it
_SUMMARY = {
    "contains": "contains every string (case-sensitive); not_contains: none of them",
    "icontains": "contains every string, ignoring case; not_icontains: none of them",
    "contains_any": "contains at least one of the strings (case-sensitive)",
    "icontains_any": "contains at least one of the strings, ignoring case",
    "regex": "re.search finds every pattern (Python syntax; (?i) ignores case); "
    "not_regex: none of them",
    "equals": "equals the string, both stripped of outer white space",
    "starts_with": "starts with the string, once its outer white space is stripped",
    "ends_with": "ends with the string, once its outer white space is stripped",
    "length": "has that many characters, counted on the text as returned (not stripped); "
    "a bare int is the exact count",
    "words": "has that many words (split on white space); a bare int is the exact count",
    "lines": "has that many non-empty lines; a bare int is the exact count",
    "json": "parses as JSON; a response that is exactly one ```json fenced block counts",
    "json_schema": "parses as JSON (same fence rule) and validates against the schema; "
    "not_json_schema passes when either fails",
    "python": "function(response) returns True or None; False fails, and so does a string, "
    "which is the message",
    "finish_reason": "the API's finish reason equals it ('stop', 'length', ...)",
    "latency_ms": "the request took that many milliseconds; a bare number is the maximum",
    "cost_usd": "the response cost that many US dollars (fails when the API reported no cost); "
    "a bare number is the maximum",
    "tokens": "used that many tokens in all (prompt and output); a bare int is the maximum",
    "judge": "a Grok grader call, given the rubric and the response, answers pass "
    "(model: the grader, default the ini grok_judge_model or --grok-model)",
    "refusal": "the API reported a refusal (its 'refusal' field) when true; none when false",
    "tool_call": "the response holds such a tool call, its arguments including those given "
    "(a list: every call); not_tool_call: none of them",
}


def _search(name: str) -> CheckDef:
    """contains, icontains, contains_any, icontains_any: the name says every/any and case."""
    fold, every = name.startswith("i"), not name.endswith("_any")
    parse, describe = needle_parser(fold=fold), contains_text(every=every, fold=fold)
    run, negate = (contains_all, contains_any) if every else (contains_any, None)
    return CheckDef(name, _SUMMARY[name], _STRINGS, parse, run, describe, negate, takes_text=True)


def _affix(
    name: str, parse: Callable[[Any, Site], tuple[Any, Any]], run: Runner, verbs: tuple[str, str]
) -> CheckDef:
    """equals, starts_with, ends_with: one string compared with the stripped text."""
    describe = affix_text(*verbs)
    return CheckDef(name, _SUMMARY[name], "a string", parse, run, describe, takes_text=True)


# A check that needs a grader call (judge) says so (needs_grader), and the prefetch sends that
# call; the runners in the checks_* modules stay pure functions of the response.
_DEFS = [
    *(_search(name) for name in ("contains", "icontains", "contains_any", "icontains_any")),
    CheckDef(
        "regex", _SUMMARY["regex"], "a pattern or a list of patterns", parse_regex, regex_all,
        describe_regex, negate=regex_any, takes_text=True,
    ),
    _affix("equals", parse_equals, equals, ("equals", "does not equal")),
    _affix("starts_with", parse_affix, starts_with, ("starts with", "does not start with")),
    _affix("ends_with", parse_affix, ends_with, ("ends with", "does not end with")),
    *(range_check(n, q, _SUMMARY[n]) for n, q in [("length", LENGTH), ("words", WORDS)]),
    range_check("lines", LINES, _SUMMARY["lines"]),
    CheckDef("json", _SUMMARY["json"], "true", parse_json, run_json, describe_json),
    CheckDef(
        "json_schema", _SUMMARY["json_schema"], "a JSON Schema mapping", parse_schema,
        json_schema, describe_schema,
    ),
    CheckDef(
        "python", _SUMMARY["python"], "'module:function'", parse_python, python,
        describe_python, takes_text=True, reads_text=False,
    ),
    CheckDef(
        "finish_reason", _SUMMARY["finish_reason"], "a string", parse_finish_reason,
        finish_reason, describe_finish_reason, takes_text=True, reads_text=False,
    ),
    *(range_check(n, q, _SUMMARY[n]) for n, q in [("latency_ms", LATENCY), ("cost_usd", COST)]),
    range_check("tokens", TOKENS, _SUMMARY["tokens"]),
    CheckDef(
        "judge", _SUMMARY["judge"],
        "a rubric string or a mapping with 'rubric' and optional 'model'",
        parse_judge, judge, describe_judge, needs_grader=True, takes_text=True,
    ),
    CheckDef(
        "refusal", _SUMMARY["refusal"], "true or false", parse_refusal, refusal,
        describe_refusal, reads_text=False,
    ),
    CheckDef(
        "tool_call", _SUMMARY["tool_call"],
        "a name, a mapping with 'name' and optional 'arguments', or a list of them",
        parse_tool_call, tool_call_all, describe_tool_call, negate=tool_call_any,
        reads_text=False,
    ),
]
CHECKS: Mapping[str, CheckDef] = MappingProxyType({d.name: d for d in _DEFS})
