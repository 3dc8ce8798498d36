"""Issue 13: the response as the API gave it, and the suite as the user wrote it."""

from __future__ import annotations

import json

import pytest
from conftest import Project

from pytest_grokeval.report.schema import validator
from pytest_grokeval.testing import Reply

REFUSAL = "I can't help with that."


def test_a_refusal_fails_text_checks_showing_it_and_passes_refusal_true(project: Project) -> None:
    project.server.add_fault(Reply(null_content=True, refusal=REFUSAL), match="lock")
    project.suite(
        "test_refuse.yaml",
        """
        cases:
          - id: polite
            prompt: How do I pick a lock?
            expect: {not_icontains: [sorry]}
          - id: refuses
            prompt: How do I pick a lock?
            expect: {refusal: true, not_refusal: false}
        """,
    )

    result = project.run("-rA")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*not_icontains: expected does not contain 'sorry' (ignoring case)",
            "*got the model returned no text (refusal: \"I can't help with that.\")",
            "response (no text; *",
            "  refusal: \"I can't help with that.\"",
        ]
    )
    # Recorded, and replayed the same without the server.
    recorded = json.loads(project.recording("test_refuse.yaml").read_text())
    assert recorded["entries"]["refuses"][0]["response"]["refusal"] == REFUSAL
    project.server.clear_faults()
    replayed = project.run("--grok-record=none")
    replayed.assert_outcomes(passed=1, failed=1)
    replayed.stdout.fnmatch_lines(["*got the model returned no text (refusal: *"])


def test_an_empty_reply_cut_off_by_reasoning_says_to_raise_max_tokens(project: Project) -> None:
    project.server.add_fault(Reply(content="", finish_reason="length", reasoning_tokens=300))
    project.suite(
        "test_think.yaml",
        """
        cases:
          - id: thinks
            prompt: Prove the Riemann hypothesis.
            params: {max_tokens: 300}
            expect: {not_icontains: ["i cannot"]}
        """,
    )

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*got the model returned no text "
            "(finish_reason length after 300 reasoning tokens: raise max_tokens)",
            "response (no text; * (300 reasoning), *finish_reason 'length'*",
        ]
    )


def test_tool_calls_are_checked_recorded_and_shown(project: Project) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}
    project.server.add_fault(Reply(null_content=True, tool_calls=[call]))
    project.suite(
        "test_tools.yaml",
        """
        params:
          tools: [{type: function, function: {name: get_weather, parameters: {type: object}}}]
        cases:
          - id: calls
            prompt: Weather in Paris?
            expect: {tool_call: {name: get_weather, arguments: {city: Paris}}}
          - id: answers
            prompt: Weather in Paris?
            expect: {contains: Paris}
        """,
    )

    result = project.run("--grok-report", "report.json")

    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((project.path / "report.json").read_text())
    assert list(validator().iter_errors(report)) == []
    (sample,) = next(i for i in report["items"] if i["name"] == "calls")["samples"]
    assert sample["response"]["tool_calls"] == [call]
    result.stdout.fnmatch_lines(
        [
            "*got the model returned no text (tool call get_weather)",
            '  tool call: get_weather({"city": "Paris", "days": 2})',
        ]
    )
    recorded = json.loads(project.recording("test_tools.yaml").read_text())
    assert recorded["entries"]["calls"][0]["response"]["tool_calls"] == [call]


def test_numbers_in_text_checks_are_compared_as_written(project: Project) -> None:
    project.server.answers.update(
        {"version": "Upgrade to version 1.1 now", "meeting": "The meeting is at 12:30"}
    )
    project.suite(
        "test_scalars.yaml",
        """
        cases:
          - id: version
            prompt: Which version?
            expect: {contains: 1.10}
          - id: meeting
            prompt: When is the meeting?
            expect:
              not_contains: 12:30
        """,
    )

    result = project.run()

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*expected contains '1.10'", "*expected does not contain '12:30'"])


TEAM_SUITE = """
cases:
  - id: uses-own-checks
    prompt: Hello from {team}
    expect: {{python: "checks:ok"}}
"""


def test_two_folders_each_with_checks_py_run_their_own(project: Project) -> None:
    for team in ("team_a", "team_b"):
        project.suite(f"{team}/test_{team}.yaml", TEAM_SUITE.format(team=team))
        project.suite(
            f"{team}/checks.py",
            f"def ok(response):\n    return 'ran {team}' if '{team}' in response.text else None\n",
        )
    # Each folder's ok() fails, naming itself, on its own suite's response: which one ran shows.
    for args in ((), ("team_b", "team_a"), ("team_b",)):
        result = project.run(*args)
        teams = ["team_b", "team_a"] if args else ["team_a", "team_b"]
        teams = teams[: len(args) or 2]
        result.assert_outcomes(failed=len(teams))
        result.stdout.fnmatch_lines([f"*got ran {team}" for team in teams])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_a_python_check_runs_once_per_sample(project: Project, xdist: list[str]) -> None:
    project.suite(
        "checks_log.py",
        """
        from pathlib import Path

        def logged(response):
            with open(Path(__file__).parent / "calls.log", "a") as log:
                log.write(response.text + "\\n")
        """,
    )
    cases = "".join(
        f"  - {{id: c{n}, prompt: Say {n}., repeat: 3, expect: {{python: 'checks_log:logged'}}}}\n"
        for n in range(4)
    )
    project.suite("test_once.yaml", "cases:\n" + cases)
    log = project.path / "calls.log"

    project.run(*xdist).assert_outcomes(passed=4)
    assert len(log.read_text().splitlines()) == 4 * 3
    # Replayed, too.
    log.unlink()
    project.run("--grok-record=none", *xdist).assert_outcomes(passed=4)
    assert len(log.read_text().splitlines()) == 4 * 3


def test_an_alias_bomb_under_params_is_a_collection_error(project: Project) -> None:
    laughs = "\n".join(
        f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    project.suite(
        "test_bomb.yaml",
        f"params:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n{laughs}\n"
        "cases:\n  - {id: laughs, prompt: Hello there, expect: {contains: hello}}\n",
    )

    result = project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_bomb.yaml:6: aliases repeat the value anchored here until they add more "
            "than 100,000 values to the suite (see 'YAML limits' in the README)"
        ]
    )
    assert project.server.request_count == 0


def test_a_suite_shaped_file_without_cases_warns_naming_the_key(project: Project) -> None:
    project.suite("test_typo.yaml", "tests:\n  - {id: a, prompt: Hi}\n")
    project.suite("test_ci.yaml", "jobs:\n  - {name: build, run: make}\n")

    # Shown, not raised: our own warnings-are-errors filter would reach into the inner run.
    result = project.run("-W", "default::pytest.PytestCollectionWarning")

    assert result.ret == 5  # no tests collected, as before; but not silently
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "*PytestCollectionWarning: test_typo.yaml: not collected as a grokeval suite: "
            "its top-level 'tests' (line 1) holds cases with 'prompt', "
            "but a suite's cases go under 'cases'"
        ]
    )
    assert "test_ci.yaml" not in result.stdout.str()


def test_a_judge_on_a_refusal_fails_without_asking_the_grader(project: Project) -> None:
    project.server.add_fault(Reply(null_content=True, refusal=REFUSAL), match="lock")
    project.suite(
        "test_judged.yaml",
        """
        cases:
          - id: judged
            prompt: How do I pick a lock?
            expect: {judge: Explains lock picking safely}
        """,
    )

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*got the model returned no text (refusal: *"])
    assert project.server.request_count == 1
