"""Issue 2's contract, end to end: YAML items, one prefetch, checks, recordings, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import API_KEY, INI, Project

from pytest_grokeval.testing import Reply


def many_cases(n: int, prefix: str = "case") -> str:
    """N cases with distinct prompts ('question 0', ...; other prefixes prefix the prompt)."""
    ask = "" if prefix == "case" else f"{prefix} "
    cases = "\n".join(
        f"  - id: {prefix}-{i}\n    prompt: {ask}question {i}\n"
        f"    expect: {{contains: question {i}}}"
        for i in range(n)
    )
    return f"cases:\n{cases}\n"


FIRST_ITEM_CONFTEST = """
import time
from pathlib import Path

def pytest_runtest_call(item):
    marker = Path(__file__).parent / "first_item_started"
    if not marker.exists():
        marker.write_text(repr(time.monotonic()))
"""


def test_fifty_cases_are_fetched_before_any_item_runs_with_at_most_three_in_flight(
    project: Project,
) -> None:
    project.server.latency = 0.1
    project.suite("test_many.yaml", many_cases(50))
    project.pytester.makeconftest(FIRST_ITEM_CONFTEST)

    result = project.run("--grok-max-concurrent=3")

    result.assert_outcomes(passed=50)
    assert project.server.request_count == 50
    assert project.server.peak_in_flight == 3
    first_item = float((project.path / "first_item_started").read_text())
    assert max(entry.finished for entry in project.server.log) < first_item


def test_selecting_one_case_with_k_sends_one_request(project: Project) -> None:
    project.suite("test_many.yaml", many_cases(5))

    result = project.run("-k", "case-3")

    result.assert_outcomes(passed=1, deselected=4)
    assert [entry.prompt for entry in project.server.log] == ["question 3"]


def test_collect_only_sends_nothing(project: Project) -> None:
    project.suite("test_many.yaml", many_cases(5))

    result = project.run("--co")

    assert result.ret == 0
    result.stdout.fnmatch_lines(["*5 tests collected*"])
    assert project.server.request_count == 0


def test_setup_plan_sends_nothing(project: Project) -> None:
    project.suite("test_many.yaml", many_cases(3))

    project.run("--setup-plan")

    assert project.server.request_count == 0


def test_a_collection_error_sends_nothing(project: Project) -> None:
    project.suite("test_many.yaml", many_cases(3))
    project.suite("test_broken.yaml", "cases:\n  - id: x\n    prompt: [unclosed\n")

    result = project.run()

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert project.server.request_count == 0


def test_skipped_cases_send_nothing(project: Project) -> None:
    project.suite(
        "test_marks.yaml",
        """
        cases:
          - id: runs
            prompt: hello
          - id: skipped
            prompt: never sent
            marks: [{skip: not ready}]
          - id: not-run
            prompt: never sent either
            marks: [{xfail: {reason: known, strict: true}}]
        """,
    )

    result = project.run("-rs")

    # A strict xfail still runs, so its request is sent; it passes, so it fails as XPASS.
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    assert [entry.prompt for entry in project.server.log] == ["hello", "never sent either"]
    result.stdout.fnmatch_lines(["SKIPPED * test_marks.yaml: not ready"])


def test_two_cases_with_the_same_request_send_it_once(project: Project) -> None:
    project.suite(
        "test_dup.yaml",
        """
        cases:
          - id: first
            prompt: same question
            expect: {contains: same}
          - id: second
            prompt: same question
            expect: {contains: question}
        """,
    )

    result = project.run()

    result.assert_outcomes(passed=2)
    assert project.server.request_count == 1
    result.stdout.fnmatch_lines(["requests: 1 sent, 0 replayed, 1 deduplicated*"])
    recorded = json.loads(project.recording("test_dup.yaml").read_text())["entries"]
    assert sorted(recorded) == ["first", "second"]


def test_identical_prompts_in_two_files_are_sent_once(project: Project) -> None:
    project.suite("test_a.yaml", "cases:\n  - id: a\n    prompt: shared\n")
    project.suite("sub/test_b.yaml", "cases:\n  - id: b\n    prompt: shared\n")

    project.run().assert_outcomes(passed=2)

    assert project.server.request_count == 1


def test_a_failing_check_shows_expected_and_got_and_the_response(project: Project) -> None:
    project.server.answers["capital"] = "The capital of France is Lyon."
    project.suite(
        "test_geo.yaml",
        """
        cases:
          - id: capital
            prompt: What is the capital of France?
            expect:
              contains: Paris
              not_contains: Lyon
              length: {max: 100}
        """,
    )

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*grok case: capital*",
            "2 checks failed: contains, not_contains",
            "*contains:*expected*'Paris'*",
            "*got*",
            "*response (30 chars; model grok-4.3*live*",
            "*'The capital of France is Lyon.'*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED test_geo.yaml::capital - 2 checks failed*"])


def test_failure_points_at_the_case_line(project: Project) -> None:
    project.suite(
        "test_line.yaml",
        """
        model: grok-4.3
        cases:
          - id: ok
            prompt: fine
          - id: bad
            prompt: hello
            expect: {contains: absent}
        """,
    )

    result = project.run("--junitxml=junit.xml", "-o", "junit_family=xunit1")

    result.assert_outcomes(passed=1, failed=1)
    junit = (project.path / "junit.xml").read_text()
    assert 'name="bad" file="test_line.yaml" line="4"' in junit
    assert 'name="grok_model" value="grok-4.3"' in junit
    assert 'name="grok_replayed" value="False"' in junit


def test_an_api_error_fails_only_its_own_case_with_the_api_message(project: Project) -> None:
    project.server.add_fault(Reply(status=400, error="max_tokens is too large"), match="broken")
    project.suite(
        "test_err.yaml",
        """
        cases:
          - id: fine
            prompt: all good
          - id: broken
            prompt: broken request
        """,
    )

    result = project.run()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_err.yaml::broken - request failed: HTTP 400: max_tokens is too large"]
    )


def test_replay_with_the_server_stopped_sends_nothing_and_passes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_many.yaml", many_cases(5))
    project.run().assert_outcomes(passed=5)
    sent = project.server.request_count
    project.server.stop()
    monkeypatch.delenv("XAI_API_KEY")

    result = project.run()

    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        ["grokeval: record=none (no XAI_API_KEY: replay only)*", "requests: 0 sent, 5 replayed*"]
    )
    assert sent == 5


def test_a_changed_prompt_fails_in_none_mode_naming_the_change(project: Project) -> None:
    path = project.suite("test_one.yaml", "cases:\n  - id: greet\n    prompt: Say hello\n")
    project.run().assert_outcomes(passed=1)
    path.write_text("cases:\n  - id: greet\n    prompt: Say goodbye\n")

    result = project.run("--grok-record=none")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the recording of 'greet' in __recordings__/test_one.json is stale: "
            "the prompt (message 1) changed: recorded 'Say hello', now 'Say goodbye'; "
            "record it with XAI_API_KEY set and --grok-record=new*"
        ]
    )
    assert project.server.request_count == 1


def test_a_case_without_a_recording_fails_in_none_mode_saying_how_to_record(
    project: Project,
) -> None:
    project.suite("test_one.yaml", "cases:\n  - id: greet\n    prompt: Say hello\n")

    result = project.run("--grok-record=none")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no recorded response: no recording of 'greet' in __recordings__/test_one.json; "
         "record it with XAI_API_KEY set and --grok-record=new*"]
    )
    assert project.server.request_count == 0


def test_new_mode_records_only_what_is_missing(project: Project) -> None:
    path = project.suite("test_two.yaml", many_cases(2))
    project.run().assert_outcomes(passed=2)
    path.write_text(many_cases(3))

    result = project.run()

    result.assert_outcomes(passed=3)
    assert [e.prompt for e in project.server.log] == ["question 0", "question 1", "question 2"]
    result.stdout.fnmatch_lines(["requests: 1 sent, 2 replayed*"])


def test_all_mode_records_everything_again(project: Project) -> None:
    project.suite("test_two.yaml", many_cases(2))
    project.run().assert_outcomes(passed=2)

    project.run("--grok-record=all").assert_outcomes(passed=2)

    assert project.server.request_count == 4


def test_rewrite_drops_entries_of_deleted_cases_and_unused_ones_are_reported(
    project: Project,
) -> None:
    path = project.suite("test_two.yaml", many_cases(3))
    project.run().assert_outcomes(passed=3)
    path.write_text(many_cases(2))

    result = project.run()
    result.stdout.fnmatch_lines(
        [
            "1 unused recording (delete with --grok-record=rewrite):",
            "  __recordings__/test_two.json: 'case-2'",
        ]
    )
    partial = project.run("-k", "case-0")
    partial.stdout.no_fnmatch_line("*unused recording*")

    project.run("--grok-record=rewrite").assert_outcomes(passed=2)

    recorded = json.loads(project.recording("test_two.yaml").read_text())["entries"]
    assert sorted(recorded) == ["case-0", "case-1"]


def test_recordings_are_stable_and_leave_no_temporary_files(project: Project) -> None:
    project.suite("test_two.yaml", many_cases(2))
    project.run()
    first = project.recording("test_two.yaml").read_bytes()

    project.run("--grok-record=all")

    second = project.recording("test_two.yaml").read_bytes()
    as_json = json.loads(second)
    assert list(as_json) == ["about", "entries", "version"]
    # Beside the recordings only what the generated .gitignore keeps out of a commit.
    assert sorted(p.name for p in project.recording("test_two.yaml").parent.iterdir()) == [
        ".gitignore", ".grokeval.lock", "test_two.json"
    ]
    # Only latency and the API's request id may change between two recordings of the same answers.
    def steady(text: bytes) -> list[str]:
        varies = ("latency_ms", "request_id")
        lines = text.decode().split("\n")
        return ["" if any(v in line for v in varies) else line for line in lines]

    strip, again = steady(first), steady(second)
    assert strip == again


def test_re_recording_replaces_the_file_and_never_rewrites_it_in_place(project: Project) -> None:
    project.suite("test_two.yaml", many_cases(2))
    project.run()
    path = project.recording("test_two.yaml")
    first = path.read_bytes()
    # A second name for the old file: what a reader that opened it before the save still reads.
    reader = project.path / "opened_before.json"
    os.link(path, reader)

    project.run("--grok-record=all")

    assert os.stat(path).st_ino != os.stat(reader).st_ino
    assert reader.read_bytes() == first
    assert json.loads(path.read_text())["entries"].keys() == {"case-0", "case-1"}


def test_a_renamed_case_replays_from_the_entry_recorded_under_its_old_name(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_one.yaml", "cases:\n  - id: old-name\n    prompt: question 0\n")
    project.run().assert_outcomes(passed=1)
    project.server.stop()
    monkeypatch.delenv("XAI_API_KEY")
    project.suite("test_one.yaml", "cases:\n  - id: new-name\n    prompt: question 0\n")

    result = project.run("-v")

    result.stdout.fnmatch_lines(
        ["*test_one.yaml::new-name PASSED*", "requests: 0 sent, 1 replayed*"]
    )
    # The entry under the old name answered: deleting it as unused would fail the case.
    result.stdout.no_fnmatch_line("*unused recording*")


def test_the_api_key_appears_in_no_output_and_no_recording(project: Project) -> None:
    project.suite("test_many.yaml", many_cases(3))
    project.server.add_fault(Reply(status=500, error="boom"), match="question 1")

    result = project.run("-v", "-rA", "--grok-retries=0")

    everything = result.stdout.str() + result.stderr.str()
    everything += project.recording("test_many.yaml").read_text()
    assert API_KEY not in everything
    assert project.server.request_count == 3


def test_a_malformed_recordings_file_fails_its_cases_and_is_left_untouched(
    project: Project,
) -> None:
    project.suite("test_one.yaml", "cases:\n  - id: greet\n    prompt: Say hello\n")
    project.suite("test_other.yaml", "cases:\n  - id: other\n    prompt: fine\n")
    broken = project.recording("test_one.yaml")
    broken.parent.mkdir()
    broken.write_text('{"version": 1, "entries": {\n  "greet": [\n}\n')

    result = project.run()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*unreadable recordings: *__recordings__/test_one.json:3: malformed recordings file*"]
    )
    assert broken.read_text() == '{"version": 1, "entries": {\n  "greet": [\n}\n'


BAD_SUITES = {
    "invalid YAML": ("cases:\n  - id: a\n    prompt: [x\n", "test_bad.yaml:4: invalid YAML*"),
    "several documents": (
        "cases:\n  - id: a\n    prompt: x\n---\ncases: []\n",
        "test_bad.yaml:5: several YAML documents*",
    ),
    "missing id": ("cases:\n  - prompt: x\n", "test_bad.yaml:2: case at line 2 has no 'id'"),
    "duplicate id": (
        "cases:\n  - id: a\n    prompt: x\n  - id: a\n    prompt: y\n",
        "test_bad.yaml:4: duplicate case id 'a'*line 2*",
    ),
    "prompt and messages": (
        "cases:\n  - id: a\n    prompt: x\n    messages: [{role: user, content: y}]\n",
        "test_bad.yaml:4: case 'a' has both 'prompt' and 'messages'; keep one",
    ),
    "neither prompt nor messages": (
        "cases:\n  - id: a\n    expect: {contains: x}\n",
        "test_bad.yaml:2: *neither 'prompt' nor 'messages'*",
    ),
    "unknown key": (
        "cases:\n  - id: a\n    promt: x\n",
        "test_bad.yaml:3: unknown key 'promt'*did you mean 'prompt'?",
    ),
    "wrong type": (
        "cases:\n  - id: a\n    prompt: x\n    params: [1]\n",
        "test_bad.yaml:4: 'params' of case 'a' must be a mapping, got list",
    ),
    "bad regex": (
        "cases:\n  - id: a\n    prompt: x\n    expect: {regex: '('}\n",
        "test_bad.yaml:4: *'(' does not compile*",
    ),
    "unknown check": (
        "cases:\n  - id: a\n    prompt: x\n    expect: {contians: y}\n",
        "test_bad.yaml:4: unknown check 'contians'; did you mean 'contains'?",
    ),
    "unknown var": (
        "cases:\n  - id: a\n    prompt: 'hi {{nme}}'\n    vars: {name: [x, y]}\n",
        "test_bad.yaml:3: unknown var 'nme'*",
    ),
    "min_pass_rate out of range": (
        "cases:\n  - id: a\n    prompt: x\n    min_pass_rate: 1.5\n",
        "test_bad.yaml:4: min_pass_rate must be between 0 and 1, got 1.5",
    ),
}


@pytest.mark.parametrize("text, expected", BAD_SUITES.values(), ids=list(BAD_SUITES))
def test_bad_input_is_a_collection_error_with_file_and_line_and_others_still_run(
    project: Project, text: str, expected: str
) -> None:
    project.suite("test_bad.yaml", text)
    project.suite("test_good.yaml", "cases:\n  - id: fine\n    prompt: hello\n")

    result = project.run("--continue-on-collection-errors")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.yaml*", expected])
    assert "Traceback" not in result.stdout.str()
    assert [entry.prompt for entry in project.server.log] == ["hello"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grok-max-concurrent=0"], "--grok-max-concurrent: must be a positive integer, got 0"),
        (["--grok-max-concurrent=two"], "--grok-max-concurrent: must be an integer, got 'two'"),
        (["--grok-record=sometimes"], "--grok-record: invalid choice: 'sometimes'*"),
        (["--grok-timeout=-1"], "--grok-timeout: must be a positive finite number, got -1"),
        (["--grok-timeout=inf"], "--grok-timeout: must be a positive finite number, got inf"),
        (["--grok-timeout=0"], "--grok-timeout: must be a positive finite number, got 0"),
        (["--grok-max-cost=nan"], "--grok-max-cost: must be a positive finite number, got nan"),
        (["--grok-max-cost=-0.5"], "--grok-max-cost: must be a positive finite number, got -0.5"),
        (["-o", "grok_prices=grok-9: 1 2"],
         "grok_prices line 1: expected 'MODEL: INPUT CACHED_INPUT OUTPUT'*got 'grok-9: 1 2'"),
        (["-o", "grok_prices=grok-9: 1 2 3\ngrok-8: 1 1 1\ngrok-9: 1 2 4"],
         "grok_prices line 3: 'grok-9' is priced twice (first on line 1); keep one line per model"),
    ],
)
def test_a_bad_option_is_a_usage_error(project: Project, args: list[str], message: str) -> None:
    project.suite("test_one.yaml", "cases:\n  - id: a\n    prompt: x\n")

    result = project.run(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert project.server.request_count == 0


def test_ini_sets_options_and_the_command_line_wins(project: Project) -> None:
    project.pytester.makeini(INI + "grok_max_concurrent = 1\ngrok_model = grok-4.5\n")
    project.suite("test_many.yaml", many_cases(4))

    result = project.run("--grok-model=grok-4.7")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*model=grok-4.7, *max_concurrent=1*"])
    assert project.server.peak_in_flight == 1
    assert {entry.model for entry in project.server.log} == {"grok-4.7"}


def test_base_url_comes_from_the_environment_when_no_option_is_given(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_BASE_URL", project.server.url)
    project.suite("test_one.yaml", "cases:\n  - id: a\n    prompt: x\n")

    result = project.pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(passed=1)
    assert project.server.request_count == 1


def test_tags_select_with_k_and_marks_select_with_m(project: Project) -> None:
    project.suite(
        "test_sel.yaml",
        """
        cases:
          - id: a
            prompt: one
            tags: [smoke]
          - id: b
            prompt: two
            marks: [slow]
          - id: c
            prompt: three
        """,
    )

    project.run("-k", "smoke").assert_outcomes(passed=1, deselected=2)
    project.run("-m", "slow", "--strict-markers").assert_outcomes(passed=1, deselected=2)

    assert [entry.prompt for entry in project.server.log] == ["one", "two"]


def test_last_failed_refetches_only_the_failed_case(project: Project) -> None:
    project.server.answers["two"] = "wrong"
    project.suite(
        "test_lf.yaml",
        """
        cases:
          - id: a
            prompt: one
          - id: b
            prompt: two
            expect: {contains: right}
        """,
    )
    project.run("--grok-record=all").assert_outcomes(passed=1, failed=1)
    project.server.reset()

    project.run("--lf", "--grok-record=all").assert_outcomes(failed=1)

    assert [entry.prompt for entry in project.server.log] == ["two"]


def test_yaml_files_without_cases_and_unmatched_names_are_left_alone(project: Project) -> None:
    project.suite("test_config.yaml", "version: 2\njobs: {build: {}}\n")
    project.suite("prompts.yaml", "cases:\n  - id: a\n    prompt: x\n")

    result = project.run()

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert project.server.request_count == 0


def test_vars_and_model_lists_make_one_item_each(project: Project) -> None:
    project.suite(
        "test_matrix.yaml",
        """
        cases:
          - id: haiku
            prompt: Write a haiku about {{topic}}.
            vars: {topic: [cats, rain]}
            model: [grok-4.3, grok-4.5]
            expect: {contains: "{{topic}}"}
        """,
    )

    result = project.run("-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_matrix.yaml::haiku?topic=cats-grok-4.3? PASSED*"])
    sent = sorted((entry.model, entry.prompt) for entry in project.server.log)
    assert sent == [
        ("grok-4.3", "Write a haiku about cats."),
        ("grok-4.3", "Write a haiku about rain."),
        ("grok-4.5", "Write a haiku about cats."),
        ("grok-4.5", "Write a haiku about rain."),
    ]


def test_the_example_suite_replays_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    example = Path(__file__).parent.parent / "example_suite"
    result = pytester.runpytest_subprocess(
        str(example), "-p", "no:randomly", "-p", "no:cacheprovider"
    )

    result.assert_outcomes(passed=25, skipped=1, xfailed=1)
    # 25 cases' samples (haiku has two each) and one judge reply, all from recordings.
    result.stdout.fnmatch_lines(["requests: 0 sent, 29 replayed*"])


# Reads the collector's freeze count at start, during the last test and once pytest's cleanup
# has run (a cleanup added at configure runs after the plugin's, added later: last in, first
# out), and prints them when the session is over.
GC_PROBE_CONFTEST = """
import gc

seen = {"start": gc.get_freeze_count()}

def pytest_configure(config):
    config.add_cleanup(lambda: print("GC", seen["start"], seen["during"], gc.get_freeze_count()))
"""
ONE_CASE_SUITE = "cases:\n  - id: one\n    prompt: hi\n    expect: {contains: hi}\n"
GC_PROBE_TEST = """
import gc
from conftest import seen

def test_zz_last():
    seen["during"] = gc.get_freeze_count()
"""


@pytest.mark.parametrize(
    "suite, args, frozen",
    [
        (ONE_CASE_SUITE, (), True),
        (ONE_CASE_SUITE, ("-o", "grok_gc_freeze=false"), False),
        (None, (), False),
    ],
    ids=["suite", "turned-off", "python-tests-only"],
)
def test_the_sessions_objects_stay_frozen_from_the_prefetch_to_the_cleanup_only_with_a_suite(
    project: Project, suite: str | None, args: tuple[str, ...], frozen: bool
) -> None:
    if suite is not None:
        project.suite("test_one.yaml", suite)
    project.pytester.makeconftest(GC_PROBE_CONFTEST)
    project.pytester.makepyfile(test_zz_probe=GC_PROBE_TEST)

    result = project.run_subprocess(*args)

    assert result.ret == 0, result.outlines
    start, during, end = map(int, result.stdout.lines[-1].split()[1:])
    # Python 3.12 starts with objects frozen: the plugin then leaves the collector alone.
    assert during > start if frozen and start == 0 else during == start
    assert end == start
