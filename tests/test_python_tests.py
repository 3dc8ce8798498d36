"""Issue 5 (part): Python tests with @pytest.mark.grok share the suites' prefetch."""

from __future__ import annotations

import json

import pytest
from conftest import Project

PYTHON_TESTS = """
import pytest
from pytest_grokeval import expect

@pytest.mark.grok(prompt="What is the refund window?", system="Be brief.")
def test_refund(grok_response):
    expect(grok_response, contains="refund window")
    assert grok_response.model == "grok-4.3"
    assert grok_response.finish_reason == "stop"
    assert grok_response.usage.total_tokens > 0
    assert grok_response.latency_ms >= 0
    assert grok_response.cost_usd > 0
    assert grok_response.replayed is {replayed}

@pytest.mark.grok(prompt="Say something async.", model="grok-4.5")
async def test_async(grok_response):
    assert grok_response.text == "You said: Say something async."
    assert grok_response.model == "grok-4.5"

@pytest.mark.grok(prompt="Fails on purpose.")
def test_expect_failure(grok_response):
    expect(grok_response, contains="nope")
"""


def test_marked_python_tests_and_yaml_items_run_in_one_prefetch(project: Project) -> None:
    project.server.latency = 0.05
    project.pytester.makepyfile(
        test_py=PYTHON_TESTS.format(replayed=False).replace(
            "async def", "@pytest.mark.asyncio\nasync def"
        )
    )
    project.suite(
        "test_suite.yaml",
        "cases:\n" + "".join(f"  - id: c{i}\n    prompt: case {i}\n" for i in range(4)),
    )
    project.pytester.makeconftest(
        "def pytest_runtest_call(item):\n"
        "    import os\n"
        "    os.environ.setdefault('FIRST_TEST', item.nodeid)\n"
    )

    result = project.run("--grok-max-concurrent=2", "-p", "asyncio")

    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_expect_failure*", "E * AssertionError: check failed: contains"]
    )
    assert project.server.request_count == 7
    assert project.server.peak_in_flight == 2
    recorded = json.loads((project.path / "__recordings__" / "test_py.py.json").read_text())
    assert sorted(recorded["entries"]) == ["test_async", "test_expect_failure", "test_refund"]


REPLAY = """
import pytest

@pytest.mark.grok(prompt="What is the refund window?")
def test_refund(grok_response):
    assert grok_response.text == "You said: What is the refund window?"
    assert grok_response.replayed is {replayed}
"""


def test_marked_python_tests_replay_without_a_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pytester.makepyfile(test_py=REPLAY.format(replayed=False))
    project.run().assert_outcomes(passed=1)
    project.pytester.makepyfile(test_py=REPLAY.format(replayed=True))
    monkeypatch.delenv("XAI_API_KEY")

    project.run().assert_outcomes(passed=1)

    assert project.server.request_count == 1


def test_a_test_using_grok_response_without_the_marker_errors_clearly(project: Project) -> None:
    project.pytester.makepyfile(test_py="def test_x(grok_response):\n    pass\n")

    result = project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*grok_response needs @pytest.mark.grok(prompt=...) on the test*"]
    )


def test_a_marker_with_bad_arguments_errors_that_test(project: Project) -> None:
    project.pytester.makepyfile(
        test_py="import pytest\n"
        "@pytest.mark.grok(prompt='x', temprature=0)\n"
        "def test_x(grok_response):\n    pass\n"
    )

    result = project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.grok got unknown 'temprature'*"])
    assert project.server.request_count == 0


@pytest.mark.parametrize(
    "arguments", ["promt='x'", "'x'", "prompt=3", "prompt='x', api='soap'"],
    ids=["misspelt", "positional", "not a string", "bad api"],
)
def test_a_bad_marker_is_reported_once_with_its_file_and_line(
    project: Project, arguments: str
) -> None:
    project.pytester.makepyfile(
        test_py=f"import pytest\n\n\n@pytest.mark.grok({arguments})\n"
        "def test_x(grok_response):\n    pass\n"
    )

    result = project.run()

    result.assert_outcomes(errors=1)
    # The line of the decorator: where Python starts the decorated function.
    reported = [line for line in result.outlines if line.startswith("test_py.py:4: @pytest")]
    assert len(reported) == 1, result.stdout.str()
    result.stdout.no_fnmatch_line("*During handling of the above exception*")


TWO_CLASSES = """
import pytest

class TestA:
    @pytest.mark.grok(prompt="question A")
    def test_it(self, grok_response):
        assert grok_response.text == "You said: question A"
        assert grok_response.replayed is {replayed}

class TestB:
    @pytest.mark.grok(prompt="question B")
    def test_it(self, grok_response):
        assert grok_response.text == "You said: question B"
        assert grok_response.replayed is {replayed}

@pytest.mark.parametrize("n", [
    pytest.param(1, marks=pytest.mark.grok(prompt="one")),
    pytest.param(2, marks=pytest.mark.grok(prompt="two")),
])
def test_param(n, grok_response):
    assert grok_response.text == "You said: " + ["one", "two"][n - 1]
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_same_named_tests_in_two_classes_record_and_replay_separately(
    project: Project, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    project.pytester.makepyfile(test_py=TWO_CLASSES.format(replayed=False))
    project.run(*xdist).assert_outcomes(passed=4)
    recordings = project.path / "__recordings__" / "test_py.py.json"
    keys = sorted(json.loads(recordings.read_text())["entries"])
    project.pytester.makepyfile(test_py=TWO_CLASSES.format(replayed=True))
    monkeypatch.delenv("XAI_API_KEY")

    result = project.run("--grok-record=none", *xdist)

    result.assert_outcomes(passed=4)
    assert keys == ["TestA::test_it", "TestB::test_it", "test_param[1]", "test_param[2]"]
    assert project.server.request_count == 4


def test_recordings_under_the_old_name_keys_still_replay(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pytester.makepyfile(test_py=REPLAY.format(replayed=False))
    project.run().assert_outcomes(passed=1)
    recordings = project.path / "__recordings__" / "test_py.py.json"
    document = json.loads(recordings.read_text())
    # Before issue 14, a marked test was recorded under its bare name (here the same text).
    document["entries"] = {"old-" + k: v for k, v in document["entries"].items()}
    recordings.write_text(json.dumps(document))
    project.pytester.makepyfile(test_py=REPLAY.format(replayed=True))
    monkeypatch.delenv("XAI_API_KEY")

    project.run("--grok-record=none").assert_outcomes(passed=1)


@pytest.mark.parametrize("param", ["n", "stream", "model", "messages"])
def test_a_marker_with_a_reserved_param_errors_that_test_and_sends_nothing(
    project: Project, param: str
) -> None:
    project.pytester.makepyfile(
        test_py="import pytest\n"
        f"@pytest.mark.grok(prompt='x', params={{'{param}': 2}})\n"
        "def test_x(grok_response):\n    pass\n"
    )

    result = project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*@pytest.mark.grok params= cannot set '{param}'; *"])
    assert project.server.request_count == 0
