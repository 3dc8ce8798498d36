"""The expectation registry: one small function per check, in the one table that collection,
the YAML items, ``expect()`` and the README all read from.

The checks themselves live by concern in checks_text, checks_measure and checks_structured;
what they are built of lives in checkbase."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
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

# A check that needs a grader call (judge) will add a field here saying so, and the engine will
# send that call during the prefetch; the runners in the checks_* modules stay pure functions of
# the response.
_DEFS = [
    CheckDef(
        name="contains",
        summary="contains every string (case-sensitive); not_contains: none of them",
        argument=_STRINGS,
        parse=needle_parser(fold=False),
        run=contains_all,
        describe=contains_text(every=True, fold=False),
        negate=contains_any,
        takes_text=True,
    ),
    CheckDef(
        name="icontains",
        summary="contains every string, ignoring case; not_icontains: none of them",
        argument=_STRINGS,
        parse=needle_parser(fold=True),
        run=contains_all,
        describe=contains_text(every=True, fold=True),
        negate=contains_any,
        takes_text=True,
    ),
    CheckDef(
        name="contains_any",
        summary="contains at least one of the strings (case-sensitive)",
        argument=_STRINGS,
        parse=needle_parser(fold=False),
        run=contains_any,
        describe=contains_text(every=False, fold=False),
        takes_text=True,
    ),
    CheckDef(
        name="icontains_any",
        summary="contains at least one of the strings, ignoring case",
        argument=_STRINGS,
        parse=needle_parser(fold=True),
        run=contains_any,
        describe=contains_text(every=False, fold=True),
        takes_text=True,
    ),
    CheckDef(
        name="regex",
        summary="re.search finds every pattern (Python syntax; (?i) ignores case); "
        "not_regex: none of them",
        argument="a pattern or a list of patterns",
        parse=parse_regex,
        run=regex_all,
        describe=describe_regex,
        negate=regex_any,
        takes_text=True,
    ),
    CheckDef(
        name="equals",
        summary="equals the string, both stripped of outer white space",
        argument="a string",
        parse=parse_equals,
        run=equals,
        describe=affix_text("equals", "does not equal"),
        takes_text=True,
    ),
    CheckDef(
        name="starts_with",
        summary="starts with the string, once its outer white space is stripped",
        argument="a string",
        parse=parse_affix,
        run=starts_with,
        describe=affix_text("starts with", "does not start with"),
        takes_text=True,
    ),
    CheckDef(
        name="ends_with",
        summary="ends with the string, once its outer white space is stripped",
        argument="a string",
        parse=parse_affix,
        run=ends_with,
        describe=affix_text("ends with", "does not end with"),
        takes_text=True,
    ),
    range_check(
        "length",
        LENGTH,
        "has that many characters, counted on the text as returned (not stripped); "
        "a bare int is the exact count",
    ),
    range_check(
        "words",
        WORDS,
        "has that many words (split on white space); a bare int is the exact count",
    ),
    range_check("lines", LINES, "has that many non-empty lines; a bare int is the exact count"),
    CheckDef(
        name="json",
        summary="parses as JSON; a response that is exactly one ```json fenced block counts",
        argument="true",
        parse=parse_json,
        run=run_json,
        describe=describe_json,
    ),
    CheckDef(
        name="json_schema",
        summary="parses as JSON (same fence rule) and validates against the schema; "
        "not_json_schema passes when either fails",
        argument="a JSON Schema mapping",
        parse=parse_schema,
        run=json_schema,
        describe=describe_schema,
    ),
    CheckDef(
        name="python",
        summary="function(response) returns True or None; False fails, and so does a string, "
        "which is the message",
        argument="'module:function'",
        parse=parse_python,
        run=python,
        describe=describe_python,
        takes_text=True,
        reads_text=False,
    ),
    CheckDef(
        name="finish_reason",
        summary="the API's finish reason equals it ('stop', 'length', ...)",
        argument="a string",
        parse=parse_finish_reason,
        run=finish_reason,
        describe=describe_finish_reason,
        takes_text=True,
        reads_text=False,
    ),
    range_check(
        "latency_ms",
        LATENCY,
        "the request took that many milliseconds; a bare number is the maximum",
    ),
    range_check(
        "cost_usd",
        COST,
        "the response cost that many US dollars (fails when the API reported no cost); "
        "a bare number is the maximum",
    ),
    range_check(
        "tokens",
        TOKENS,
        "used that many tokens in all (prompt and output); a bare int is the maximum",
    ),
    CheckDef(
        name="judge",
        summary="a Grok grader call, given the rubric and the response, answers pass "
        "(model: the grader, default the ini grok_judge_model or --grok-model)",
        argument="a rubric string or a mapping with 'rubric' and optional 'model'",
        parse=parse_judge,
        run=judge,
        describe=describe_judge,
        needs_grader=True,
        takes_text=True,
    ),
]
_DEFS += [
    CheckDef(
        name="refusal",
        summary="the API reported a refusal (its 'refusal' field) when true; none when false",
        argument="true or false",
        parse=parse_refusal,
        run=refusal,
        describe=describe_refusal,
        reads_text=False,
    ),
    CheckDef(
        name="tool_call",
        summary="the response holds such a tool call, its arguments including those given "
        "(a list: every call); not_tool_call: none of them",
        argument="a name, a mapping with 'name' and optional 'arguments', or a list of them",
        parse=parse_tool_call,
        run=tool_call_all,
        describe=describe_tool_call,
        negate=tool_call_any,
        reads_text=False,
    ),
]
CHECKS: Mapping[str, CheckDef] = MappingProxyType({d.name: d for d in _DEFS})
