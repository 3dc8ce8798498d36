"""Issue 14: item ids that pytest's rerun options (--lf, --ff, --sw, --nf) recognise."""

from __future__ import annotations

import re

import pytest
from conftest import Project

from pytest_grokeval.testing import FakeRequest, Reply

# Five items: two of them fail, a vars choice and a model of a model list.
SUITE = """
cases:
  - id: ok
    prompt: fine
  - id: greet
    prompt: hello {{who}}
    vars: {who: [ann, bob]}
    expect: {not_contains: bob}
  - id: multi
    prompt: same for every model
    model: [grok-4.3, grok-mini]
    expect: {not_contains: grok-mini}
"""
FAILING = ["greet[who=bob]", "multi[grok-mini]"]


def answer_with_the_model(request: FakeRequest) -> Reply:
    return Reply(content=f"{request.model}: {request.prompt}")


def ran(result: pytest.RunResult) -> list[tuple[str, str]]:
    """The items a -v run reported, in the order they ran, with their outcome."""
    found = [
        re.match(r"test_rerun\.yaml::(\S+) (PASSED|FAILED)", line)
        for line in result.stdout.lines
    ]
    return [(m.group(1), m.group(2)) for m in found if m is not None]


@pytest.fixture
def failing(project: Project) -> Project:
    """A project whose cache holds a run with two failing bracketed items."""
    project.server.responder = answer_with_the_model
    project.suite("test_rerun.yaml", SUITE)
    project.run().assert_outcomes(passed=3, failed=2)
    return project


def test_last_failed_reruns_exactly_the_failing_vars_and_model_list_items(
    failing: Project,
) -> None:
    result = failing.run("--lf", "-v")

    assert ran(result) == [(name, "FAILED") for name in FAILING]
    result.assert_outcomes(failed=2)


def test_last_failed_under_xdist_reruns_exactly_the_failing_items(failing: Project) -> None:
    result = failing.run("--lf", "-n", "2")

    result.assert_outcomes(failed=2)
    failed = [line.split()[1] for line in result.outlines if line.startswith("FAILED ")]
    assert sorted(failed) == [f"test_rerun.yaml::{name}" for name in FAILING]


def test_failed_first_runs_the_failing_vars_and_model_list_items_first(
    failing: Project,
) -> None:
    result = failing.run("--ff", "-v")

    assert [name for name, _ in ran(result)[:2]] == FAILING
    result.assert_outcomes(passed=3, failed=2)


def test_stepwise_resumes_at_the_failing_vars_item_and_then_the_model_list_item(
    project: Project,
) -> None:
    project.server.responder = answer_with_the_model
    project.suite("test_rerun.yaml", SUITE)
    first = project.run("--sw", "-v")
    assert ran(first) == [("ok", "PASSED"), ("greet[who=ann]", "PASSED"), (FAILING[0], "FAILED")]

    again = project.run("--sw", "-v")
    assert ran(again) == [(FAILING[0], "FAILED")]

    project.suite("test_rerun.yaml", SUITE.replace("not_contains: bob", "contains: bob"))
    fixed = project.run("--sw", "-v")
    assert ran(fixed) == [
        (FAILING[0], "PASSED"),
        ("multi[grok-4.3]", "PASSED"),
        (FAILING[1], "FAILED"),
    ]

    last = project.run("--sw", "-v")
    assert ran(last) == [(FAILING[1], "FAILED")]


def test_new_first_runs_only_the_vars_item_added_since_the_last_run_first(
    failing: Project,
) -> None:
    failing.suite("test_rerun.yaml", SUITE.replace("[ann, bob]", "[ann, bob, cy]"))

    result = failing.run("--nf", "-v")

    assert [name for name, _ in ran(result)] == [
        "greet[who=cy]",
        "ok",
        "greet[who=ann]",
        "greet[who=bob]",
        "multi[grok-4.3]",
        "multi[grok-mini]",
    ]
