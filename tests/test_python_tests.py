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
