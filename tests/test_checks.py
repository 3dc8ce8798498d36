"""Unit tests of the expectation registry and the shared message helpers (no network)."""

from __future__ import annotations

import ast
import json
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_grokeval.checks.judge import JudgeError
from pytest_grokeval.checks.registry import (
    CHECKS,
    Check,
    CheckResult,
    ExpectError,
    check_names,
    expect,
    failure_message,
    parse_expect,
    run_checks,
)
from pytest_grokeval.data import Completion, ToolCall, Usage
from pytest_grokeval.messages import describe_response, plural, shorten


def reply(text: str = "The capital of France is Paris.", **fields: Any) -> Completion:
    values: dict[str, Any] = {
        "finish_reason": "stop",
        "model": "grok-4.3",
        "usage": Usage(prompt_tokens=120, completion_tokens=35, total_tokens=155),
        "latency_ms": 840.0,
        "cost_usd": 0.00024,
        "replayed": True,
    }
    return Completion(text=text, **(values | fields))


def check(response: Completion, name: str, arg: Any, **kwargs: Any) -> CheckResult:
    (result,) = run_checks(parse_expect({name: arg}, **kwargs), response)
    return result


WEATHER = ToolCall("get_weather", {"city": "Paris", "days": 1, "units": {"temp": "C"}})
TIME = ToolCall("get_time", {"zone": "CET"})
CALLED = reply("", tool_calls=(WEATHER,))

# --- every check and its not_ form -----------------------------------------------------------

SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}

CASES = [
    ("contains", "Paris", reply("The capital is Paris."), True),
    ("contains", "paris", reply("The capital is Paris."), False),
    ("contains", ["Paris", "France"], reply("Paris, France"), True),
    ("contains", 30, reply("You have 30 days."), True),
    ("contains", 1.5, reply("Take 1.5 tablets."), True),
    ("icontains", "PARIS", reply("paris"), True),
    ("icontains", "straße", reply("STRASSE"), True),
    ("icontains", ["paris", "LYON"], reply("Paris and Lyon"), True),
    ("icontains", "Rome", reply("Paris"), False),
    ("contains_any", ["Berlin", "Paris"], reply("Paris"), True),
    ("contains_any", ["Berlin", "Rome"], reply("Paris"), False),
    ("contains_any", "Paris", reply("Paris"), True),
    ("icontains_any", ["BERLIN", "PARIS"], reply("paris"), True),
    ("icontains_any", ["berlin"], reply("Paris"), False),
    ("regex", r"\d+ days", reply("within 30 days"), True),
    ("regex", ["^The", r"end\.$"], reply("The end."), True),
    ("regex", "(?i)acme", reply("ACME Corp"), True),
    ("regex", "acme", reply("ACME Corp"), False),
    ("equals", " Paris ", reply("\n Paris \n"), True),
    ("equals", "Paris", reply("Paris."), False),
    ("equals", 4, reply("4\n"), True),
    ("equals", "", reply("  \n"), True),
    ("starts_with", "The", reply("  The end"), True),
    ("starts_with", "end", reply("The end"), False),
    ("starts_with", "The", reply("  "), False),
    ("ends_with", "end.", reply("The end.  \n"), True),
    ("ends_with", "The", reply("The end"), False),
    ("ends_with", "a long suffix", reply("short"), False),
    ("length", 12, reply("hello world!"), True),
    ("length", 5, reply(" abc "), True),
    ("length", {"max": 3}, reply("abcd"), False),
    ("length", {"min": 2, "max": 4}, reply("abc"), True),
    ("length", {"min": 4}, reply("abc"), False),
    ("words", 3, reply(" one two\n three "), True),
    ("words", {"max": 2}, reply("a b c"), False),
    ("lines", 2, reply("a\n\n  \nb\n"), True),
    ("lines", {"min": 3}, reply("a\nb"), False),
    ("json", True, reply('{"a": 1}'), True),
    ("json", True, reply(" [1, 2] \n"), True),
    ("json", True, reply('```json\n{"a": 1}\n```'), True),
    ("json", True, reply("\n```\n[1]\n```\n"), True),
    ("json", True, reply('Here it is: {"a": 1}'), False),
    ("json", True, reply('```json\n{"a": 1}\n```\nDone.'), False),
    ("json", True, reply("```json\n{}\n```\n```json\n{}\n```"), False),
    ("json", True, reply(" "), False),
    ("json_schema", SCHEMA, reply('{"city": "Paris"}'), True),
    ("json_schema", SCHEMA, reply('```json\n{"city": "Paris"}\n```'), True),
    ("json_schema", SCHEMA, reply('{"town": "Paris"}'), False),
    ("json_schema", SCHEMA, reply('{"city": 7}'), False),
    ("json_schema", SCHEMA, reply("Paris"), False),
    ("finish_reason", "stop", reply(), True),
    ("finish_reason", "stop", reply(finish_reason="length"), False),
    ("finish_reason", "stop", reply(finish_reason=None), False),
    ("latency_ms", 1000, reply(latency_ms=840.0), True),
    ("latency_ms", {"max": 500}, reply(latency_ms=840.0), False),
    ("latency_ms", {"min": 900, "max": 2000.5}, reply(latency_ms=840.0), False),
    ("cost_usd", 0.001, reply(cost_usd=0.00024), True),
    ("cost_usd", {"max": 0.0001}, reply(cost_usd=0.00024), False),
    ("tokens", 200, reply(), True),
    ("tokens", {"max": 100}, reply(), False),
    ("tokens", {"min": 100, "max": 155}, reply(), True),
    ("refusal", True, reply("", refusal="I can't help with that."), True),
    ("refusal", True, reply(), False),
    ("refusal", False, reply(), True),
    ("refusal", False, reply("", refusal="No."), False),
    ("tool_call", "get_weather", reply("", tool_calls=(WEATHER,)), True),
    ("tool_call", {"name": "get_weather", "arguments": {"city": "Paris"}}, CALLED, True),
    ("tool_call", {"name": "get_weather", "arguments": {"city": "Rome"}}, CALLED, False),
    ("tool_call", {"name": "get_weather", "arguments": {"units": {"temp": "C"}}}, CALLED, True),
    ("tool_call", {"name": "get_weather", "arguments": {"days": True}}, CALLED, False),
    ("tool_call", ["get_time", "get_date"], CALLED, False),
    ("tool_call", ["get_weather", "get_time"], reply("", tool_calls=(WEATHER, TIME)), True),
    ("tool_call", "get_weather", reply("It is sunny."), False),
]


@pytest.mark.parametrize(("name", "arg", "response", "passes"), CASES)
def test_a_check_passes_or_fails_and_its_not_form_does_the_opposite(
    name: str, arg: Any, response: Completion, passes: bool
) -> None:
    assert check(response, name, arg).passed is passes
    assert check(response, f"not_{name}", arg).passed is not passes


def test_every_registered_check_is_covered_by_the_table() -> None:
    # python and judge have their own tests below: they need a module and a grader reply.
    assert {row[0] for row in CASES} | {"python", "judge"} == set(CHECKS)


@pytest.mark.parametrize(
    ("name", "arg", "text", "passes"),
    [
        ("not_contains", ["poem", "as an ai"], "Here is a poem.", False),
        ("not_contains", ["poem", "as an ai"], "I can help with your order.", True),
        ("not_icontains", ["poem", "as an ai"], "As an AI, I cannot.", False),
        ("not_regex", ["poem", r"\bverse\b"], "A verse for you.", False),
        ("not_regex", ["poem", r"\bverse\b"], "Universe.", True),
    ],
)
def test_a_negated_list_check_passes_only_when_none_of_the_items_is_found(
    name: str, arg: list[str], text: str, passes: bool
) -> None:
    assert check(reply(text), name, arg).passed is passes


@pytest.mark.parametrize("name", ["cost_usd", "not_cost_usd"])
def test_a_cost_check_fails_in_both_forms_when_no_cost_was_reported(name: str) -> None:
    result = check(reply(cost_usd=None), name, 1.0)
    assert (result.passed, result.got) == (
        False, "the cost is unknown: the response reported no cost, and its model no known price"
    )


@pytest.mark.parametrize("name", ["tokens", "not_tokens", "cost_usd"])
def test_a_tokens_or_cost_check_fails_in_both_forms_when_the_usage_is_unknown(name: str) -> None:
    result = check(reply(usage=None, cost_usd=None), name, 10**9)
    assert result.passed is False
    assert "unknown" in result.got and "no usage" in result.got, result.got


# --- expected and got texts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arg", "response", "expected", "got"),
    [
        ("contains", "Paris", reply("Lyon"), "contains 'Paris'", "'Paris' not found"),
        (
            "contains",
            ["Paris", "Lyon", "Nice"],
            reply("Lyon"),
            "contains all of 'Paris', 'Lyon', 'Nice'",
            "'Paris', 'Nice' not found",
        ),
        ("not_contains", "poem", reply("a poem"), "does not contain 'poem'", "found 'poem'"),
        (
            "not_icontains",
            ["poem", "as an AI"],
            reply("As an ai..."),
            "contains none of 'poem', 'as an AI' (ignoring case)",
            "found 'as an AI'",
        ),
        (
            "contains_any",
            ["a", "b"],
            reply("xyz"),
            "contains any of 'a', 'b'",
            "'a', 'b' not found",
        ),
        ("regex", r"\d+", reply("none"), "matches '\\\\d+'", "no match for '\\\\d+'"),
        (
            "not_regex",
            "(?i)poem",
            reply("A Poem"),
            "does not match '(?i)poem'",
            "matched 'Poem' at char 2",
        ),
        (
            "not_regex",
            ["x", "y"],
            reply("a y"),
            "matches none of 'x', 'y'",
            "'y' matched 'y' at char 2",
        ),
        ("equals", "Paris", reply(" Lyon\n"), "equals 'Paris'", "'Lyon'"),
        ("not_equals", "Paris", reply("Paris"), "does not equal 'Paris'", "'Paris'"),
        ("starts_with", "Paris", reply("Lyon is"), "starts with 'Paris'", "starts with 'Lyon '"),
        ("starts_with", "Paris", reply(" "), "starts with 'Paris'", "an empty response"),
        ("ends_with", "end", reply("the start"), "ends with 'end'", "ends with 'art'"),
        ("not_ends_with", "end", reply("the end"), "does not end with 'end'", "ends with 'end'"),
        ("length", 12, reply("abc"), "has exactly 12 chars", "3 chars"),
        ("not_length", 3, reply("abc"), "has not exactly 3 chars", "3 chars"),
        ("length", {"max": 2}, reply("abc"), "has at most 2 chars", "3 chars"),
        ("not_length", {"max": 5}, reply("abc"), "has more than 5 chars", "3 chars"),
        ("words", {"min": 5}, reply("a b"), "has at least 5 words", "2 words"),
        ("not_words", {"min": 1}, reply("a"), "has fewer than 1 word", "1 word"),
        (
            "lines",
            {"min": 2, "max": 3},
            reply("one line"),
            "has between 2 and 3 non-empty lines",
            "1 non-empty line",
        ),
        (
            "not_lines",
            {"min": 1, "max": 3},
            reply("one line"),
            "has fewer than 1 or more than 3 non-empty lines",
            "1 non-empty line",
        ),
        (
            "json",
            True,
            reply("nope"),
            "parses as JSON",
            "not JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        ("not_json", True, reply("```json\n[]\n```"), "does not parse as JSON", None),
        (
            "json_schema",
            SCHEMA,
            reply('{"city": 7}'),
            "parses as JSON valid against the schema "
            "{'type': 'object', 'required': ['city'], 'properties': {'city': {'type': 'str...",
            "7 is not of type 'string' at $.city",
        ),
        (
            "json_schema",
            SCHEMA,
            reply('{"city": null}'),
            "parses as JSON valid against the schema "
            "{'type': 'object', 'required': ['city'], 'properties': {'city': {'type': 'str...",
            "null is not of type 'string' at $.city",
        ),
        ("finish_reason", "stop", reply(finish_reason="length"), "finished with 'stop'", None),
        (
            "not_finish_reason",
            "length",
            reply(finish_reason="length"),
            "finished with anything but 'length'",
            "finished with 'length'",
        ),
        ("latency_ms", 500, reply(latency_ms=840.4), "took at most 500 ms", "840.4 ms"),
        ("not_latency_ms", {"min": 900}, reply(latency_ms=10.0), "took less than 900 ms", None),
        ("cost_usd", 0.0001, reply(cost_usd=0.00024), "cost at most $0.0001", "$0.00024"),
        ("tokens", 100, reply(), "used at most 100 tokens", "155 tokens (120 in + 35 out)"),
    ],
)
def test_a_result_says_what_was_expected_and_what_came_back(
    name: str, arg: Any, response: Completion, expected: str, got: str | None
) -> None:
    result = check(response, name, arg)
    assert result.expected == expected
    if got is not None:
        assert result.got == got


def test_a_passing_json_check_says_what_it_parsed_and_where() -> None:
    assert check(reply('```json\n{"a": 1}\n```'), "json", True).got == (
        "parsed a JSON object (in a ``` fence)"
    )
    assert check(reply("[1]"), "json", True).got == "parsed a JSON array"


def test_a_schema_failure_counts_the_other_errors() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    result = check(reply('{"a": 1, "b": 2}'), "json_schema", schema)
    assert result.got.endswith("(and 1 more error)")


def test_values_in_expected_and_got_are_shortened_in_the_middle() -> None:
    needle = "x" * 500
    result = check(reply("y" * 1000), "contains", needle)
    assert "chars omitted" in result.expected
    assert len(result.expected) < 200


# --- the python check ------------------------------------------------------------------------

USER_MODULE = "grokeval_user_checks"


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Path]:
    source = """
        def polite(response):
            return "please" in response.text

        def explained(response):
            return None if "please" in response.text else "ask nicely"

        def explode(response):
            raise ValueError("boom")

        def numeric(response):
            return 42

        NOT_CALLABLE = 3
    """
    (tmp_path / f"{USER_MODULE}.py").write_text(textwrap.dedent(source))
    yield tmp_path
    sys.modules.pop(USER_MODULE, None)


@pytest.mark.parametrize(
    ("function", "text", "passes", "got"),
    [
        ("polite", "yes please", True, "returned True"),
        ("polite", "no", False, "returned False"),
        ("explained", "please", True, "returned None"),
        ("explained", "no", False, "ask nicely"),
        ("explode", "x", False, "raised ValueError: boom"),
        (
            "numeric",
            "x",
            False,
            "returned 42; a python check returns True, None, False or a message",
        ),
    ],
)
def test_a_python_check_calls_the_function_with_the_response(
    user_module: Path, function: str, text: str, passes: bool, got: str
) -> None:
    result = check(reply(text), "python", f"{USER_MODULE}:{function}", import_paths=[user_module])
    assert (result.passed, result.got, result.expected) == (
        passes,
        got,
        f"is accepted by {USER_MODULE}:{function}",
    )


@pytest.mark.parametrize(("function", "passes"), [("explained", True), ("explode", False)])
def test_not_python_passes_on_a_rejection_but_never_on_an_error(
    user_module: Path, function: str, passes: bool
) -> None:
    reference = f"{USER_MODULE}:{function}"
    result = check(reply("no"), "not_python", reference, import_paths=[user_module])
    assert result.passed is passes


def test_parsing_a_python_check_leaves_sys_path_as_it_was(user_module: Path) -> None:
    before = list(sys.path)
    parse_expect({"python": f"{USER_MODULE}:polite"}, import_paths=[user_module])
    with pytest.raises(ExpectError):
        parse_expect({"python": "grokeval_no_such_module:f"}, import_paths=[user_module])
    assert sys.path == before


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "grokeval_no_such_module:f",
            "check 'python': cannot import 'grokeval_no_such_module': "
            "No module named 'grokeval_no_such_module'",
        ),
        (f"{USER_MODULE}:missing", f"check 'python': {USER_MODULE!r} has no attribute 'missing'"),
        (
            f"{USER_MODULE}:NOT_CALLABLE",
            f"check 'python': '{USER_MODULE}:NOT_CALLABLE' is not callable (it is int)",
        ),
        ("no_colon", "check 'python' takes 'module:function', got 'no_colon'"),
    ],
)
def test_a_python_check_that_cannot_be_loaded_is_an_error_at_parse_time(
    user_module: Path, reference: str, message: str
) -> None:
    with pytest.raises(ExpectError) as info:
        parse_expect({"python": reference}, import_paths=[user_module])
    assert (info.value.key, str(info.value)) == ("python", message)


def test_a_python_module_that_raises_on_import_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "grokeval_broken_checks.py").write_text("raise RuntimeError('half written')\n")
    try:
        with pytest.raises(ExpectError, match="importing 'grokeval_broken_checks' raised "):
            parse_expect({"python": "grokeval_broken_checks:f"}, import_paths=[tmp_path])
    finally:
        sys.modules.pop("grokeval_broken_checks", None)


# --- bad expectations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"contians": "x"}, "unknown check 'contians'; did you mean 'contains'?"),
        ({"not-contains": "x"}, "unknown check 'not-contains'; did you mean 'not_contains'?"),
        ({"not_regexp": "x"}, "unknown check 'not_regexp'; did you mean 'not_regex'?"),
        ({"xyzzy": 1}, "unknown check 'xyzzy'; see the README for the list of checks"),
        (
            {"judge": 3},
            "check 'judge' takes a rubric string or a mapping with 'rubric' and optional "
            "'model', got 3",
        ),
        (
            {"length": "abc"},
            "check 'length' takes an int or a mapping with 'min' and/or 'max', got 'abc'",
        ),
        (
            {"not_length": True},
            "check 'not_length' takes an int or a mapping with 'min' and/or 'max', got True",
        ),
        ({"words": {}}, "check 'words' takes an int or a mapping with 'min' and/or 'max', got {}"),
        (
            {"lines": {"maxx": 3}},
            "check 'lines': unknown key 'maxx'; allowed keys are 'min' and 'max'",
        ),
        ({"words": {"min": 5, "max": 2}}, "check 'words': 'min' (5) is greater than 'max' (2)"),
        ({"length": {"min": -1}}, "check 'length': 'min' must be an int >= 0, got -1"),
        ({"length": {"max": 2.5}}, "check 'length': 'max' must be an int >= 0, got 2.5"),
        ({"tokens": {"max": False}}, "check 'tokens': 'max' must be an int >= 0, got False"),
        (
            {"latency_ms": {"max": float("nan")}},
            "check 'latency_ms': 'max' must be a number >= 0, got nan",
        ),
        (
            {"cost_usd": "cheap"},
            "check 'cost_usd' takes a number or a mapping with 'min' and/or 'max', got 'cheap'",
        ),
        (
            {"regex": "("},
            "check 'regex': pattern '(' does not compile: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            {"not_regex": ["ok", "[a-"]},
            "check 'not_regex': pattern '[a-' does not compile: "
            "unterminated character set at position 0",
        ),
        ({"contains": None}, "check 'contains' takes a string or a list of strings, got None"),
        ({"contains": []}, "check 'contains' takes a string or a list of strings, got []"),
        ({"contains": ["a", None]}, "check 'contains': list items must be strings, got None"),
        ({"icontains_any": [True]}, "check 'icontains_any': list items must be strings, got True"),
        ({"contains": ""}, "check 'contains': an empty string matches every response"),
        ({"starts_with": ["a"]}, "check 'starts_with' takes a string, got ['a']"),
        ({"equals": {"a": 1}}, "check 'equals' takes a string, got {'a': 1}"),
        ({"json": False}, "check 'json' takes true, got False; use not_json"),
        ({"not_json": False}, "check 'not_json' takes true, got False; use json"),
        ({"json": "yes"}, "check 'json' takes true, got 'yes'"),
        (
            {"json_schema": "object"},
            "check 'json_schema' takes a JSON Schema mapping, got 'object'",
        ),
        (
            {"json_schema": {"type": "strin"}},
            "check 'json_schema': invalid schema: "
            "'strin' is not valid under any of the given schemas at $.type",
        ),
        ({"finish_reason": ""}, "check 'finish_reason' takes a string, got ''"),
        ({1: "x"}, "check names are strings, got 1"),
    ],
)
def test_a_bad_expectation_is_an_error_that_names_the_check(
    entry: dict[Any, Any], message: str
) -> None:
    with pytest.raises(ExpectError) as info:
        parse_expect(entry)
    assert str(info.value) == message
    assert info.value.key == str(next(iter(entry)))


def test_the_first_bad_entry_is_the_one_reported() -> None:
    with pytest.raises(ExpectError) as info:
        parse_expect({"contains": "ok", "lenght": 3, "regex": "("})
    assert info.value.key == "lenght"


def test_an_expect_error_is_a_value_error_that_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ExpectError("regex", "check 'regex': bad")))
    assert isinstance(error, ExpectError)
    assert isinstance(error, ValueError)
    assert (error.key, str(error)) == ("regex", "check 'regex': bad")


def test_an_expect_value_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(ExpectError, match="expect must be a mapping"):
        parse_expect(["contains"])  # type: ignore[arg-type]


# --- parsed checks and the registry ----------------------------------------------------------


def test_a_parsed_check_keeps_the_name_as_written_and_a_normalised_argument() -> None:
    checks = parse_expect({"not_contains": "poem", "length": 3, "tokens": 100, "equals": " a "})
    assert [(c.name, c.base, c.negated, c.arg) for c in checks] == [
        ("not_contains", "contains", True, ("poem",)),
        ("length", "length", False, {"min": 3, "max": 3}),
        ("tokens", "tokens", False, {"max": 100}),
        ("equals", "equals", False, "a"),
    ]
    assert all(isinstance(c, Check) for c in checks)


def test_check_names_lists_every_check_and_its_negation_sorted() -> None:
    names = check_names()
    assert names == sorted(names)
    assert set(names) == set(CHECKS) | {f"not_{name}" for name in CHECKS}


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_documents_itself_in_one_line(name: str) -> None:
    definition = CHECKS[name]
    assert definition.name == name
    for line in (definition.summary, definition.argument):
        assert line
        assert "\n" not in line


def test_run_checks_runs_every_check_even_after_a_failure(user_module: Path) -> None:
    checks = parse_expect(
        {"python": f"{USER_MODULE}:explode", "contains": "nope", "length": {"min": 1}},
        import_paths=[user_module],
    )
    results = run_checks(checks, reply())
    assert [r.passed for r in results] == [False, False, True]


# --- failure messages ------------------------------------------------------------------------


def test_no_failure_message_when_every_check_passed() -> None:
    response = reply()
    results = run_checks(parse_expect({"contains": "Paris"}), response)
    assert failure_message(results, response) is None


def test_a_single_failure_is_named_on_the_first_line_then_expected_and_got() -> None:
    response = reply("Lyon")
    message = failure_message(run_checks(parse_expect({"contains": "Paris"}), response), response)
    assert message == (
        "check failed: contains\n"
        "  contains: expected contains 'Paris'\n"
        "                 got 'Paris' not found\n"
        "\n" + describe_response(response)
    )


def test_several_failures_are_counted_and_aligned_in_one_column() -> None:
    response = reply("Here is a poem.")
    checks = parse_expect({"contains": "Paris", "length": 3, "not_regex": "poem", "words": 4})
    message = failure_message(run_checks(checks, response), response)
    assert message is not None
    assert message.splitlines()[:7] == [
        "3 checks failed: contains, length, not_regex",
        "  contains:  expected contains 'Paris'",
        "                  got 'Paris' not found",
        "  length:    expected has exactly 3 chars",
        "                  got 15 chars",
        "  not_regex: expected does not match 'poem'",
        "                  got matched 'poem' at char 10",
    ]
    assert message.endswith("\n\n" + describe_response(response))


def test_a_multi_line_message_from_a_python_check_stays_in_its_column(user_module: Path) -> None:
    (user_module / "grokeval_multiline.py").write_text("def f(text):\n    return 'a\\nb'\n")
    try:
        checks = parse_expect({"python": "grokeval_multiline:f"}, import_paths=[user_module])
    finally:
        sys.modules.pop("grokeval_multiline", None)
    response = reply()
    message = failure_message(run_checks(checks, response), response)
    assert message is not None
    assert message.splitlines()[2:4] == ["               got a", "                   b"]


def test_expect_passes_silently_when_every_check_passes() -> None:
    expect(reply(), contains="Paris", not_contains="poem", length={"max": 100})


def test_expect_raises_an_assertion_error_with_the_failure_message() -> None:
    response = reply()
    with pytest.raises(AssertionError) as info:
        expect(response, contains="Lyon", icontains="paris")
    checks = parse_expect({"contains": "Lyon", "icontains": "paris"})
    assert str(info.value) == failure_message(run_checks(checks, response), response)


def test_expect_raises_an_expect_error_for_a_bad_check_before_running_any() -> None:
    with pytest.raises(ExpectError, match="did you mean 'contains'"):
        expect(reply(), contians="Paris")


def test_expect_without_checks_is_an_error() -> None:
    with pytest.raises(ExpectError, match="at least one check"):
        expect(reply())


# --- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "word", "plural_form", "text"),
    [
        (0, "check", None, "0 checks"),
        (1, "check", None, "1 check"),
        (2, "check", None, "2 checks"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_plural_picks_the_form_for_the_count(
    n: int, word: str, plural_form: str | None, text: str
) -> None:
    assert plural(n, word, plural_form) == text


@pytest.mark.parametrize("text", ["", "short", "it's", 'say "hi"', "a\nb\\c"])
def test_shorten_is_repr_for_short_text(text: str) -> None:
    assert shorten(text) == repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "abcdefghij" * 100,
        "it's " * 200,
        "both ' and \" " * 80,
        "line\n\ttab\\ " * 90,
        "é中🙂 " * 300,
    ],
)
def test_shorten_keeps_head_and_tail_and_says_how_much_is_omitted(text: str) -> None:
    short = shorten(text, 100)
    assert 80 <= len(short) <= 100
    assert short[0] == repr(text)[0]
    head, _, rest = ast.literal_eval(short).partition(" ... [")
    count, _, tail = rest.partition(" chars omitted] ... ")
    assert text.startswith(head)
    assert text.endswith(tail)
    assert len(head) + int(count) + len(tail) == len(text)


def test_describe_response_shows_size_metadata_and_the_text() -> None:
    response = reply("The capital of France is Paris.")
    assert describe_response(response) == (
        "response (31 chars; model grok-4.3, 840 ms, 120 in + 35 out tokens, $0.000240, "
        "replayed):\n  'The capital of France is Paris.'"
    )


def test_describe_response_shows_live_an_unusual_finish_reason_and_an_unknown_cost() -> None:
    response = reply("a", finish_reason="length", cost_usd=None, replayed=False)
    assert describe_response(response) == (
        "response (1 char; model grok-4.3, 840 ms, 120 in + 35 out tokens, cost unknown, "
        "finish_reason 'length', live):\n  'a'"
    )


def test_describe_response_says_tokens_are_unknown_without_usage() -> None:
    response = reply("a", usage=None, cost_usd=None)
    assert "tokens unknown (no usage reported), cost unknown" in describe_response(response)


def test_describe_response_shortens_long_text() -> None:
    text = describe_response(reply("word " * 1000), limit=200)
    assert "chars omitted" in text
    assert len(text.splitlines()[1]) <= 202


def grader(text: str) -> Completion:
    return reply(text)


@pytest.mark.parametrize(
    ("name", "verdict", "passes"),
    [
        ("judge", '{"pass": true, "reason": "polite"}', True),
        ("judge", '{"pass": false, "reason": "rude"}', False),
        ("not_judge", '{"pass": false, "reason": "rude"}', True),
        ("judge", '```json\n{"pass": true, "reason": "fenced"}\n```', True),
    ],
)
def test_a_judge_check_follows_the_graders_verdict_and_shows_its_reason(
    name: str, verdict: str, passes: bool
) -> None:
    (parsed,) = parse_expect({name: {"rubric": "is polite", "model": "grok-judge"}})

    (result,) = run_checks([parsed], reply(), {name: grader(verdict)})

    assert result.passed is passes
    assert result.got == json.loads(verdict.strip("`json\n"))["reason"]
    assert "is polite" in result.expected


@pytest.mark.parametrize(
    "bad", ["I think it passes.", '{"pass": "yes"}', '["pass"]', None]
)
def test_a_judge_reply_that_is_no_verdict_is_an_error_not_a_pass(bad: str | None) -> None:
    (parsed,) = parse_expect({"judge": "is polite"})
    graded = {} if bad is None else {"judge": grader(bad)}

    with pytest.raises(JudgeError):
        run_checks([parsed], reply(), graded)


def test_expect_refuses_a_judge_check_it_cannot_run() -> None:
    with pytest.raises(ExpectError, match="judge needs a grader call"):
        expect(reply(), judge="is polite")
