"""Issue 4: under pytest-xdist, one prefetch, one global limit, one set of recordings."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from conftest import Project
from test_plugin import many_cases

from pytest_grokeval.testing import FakeGrok, FakeRequest, Reply

XDIST = pytest.mark.parametrize(
    "xdist", [[], ["-n", "2"], ["-n", "3"]], ids=["no-xdist", "n2", "n3"]
)


@XDIST
def test_sixty_cases_are_sent_once_each_within_the_global_limit(
    project: Project, xdist: list[str]
) -> None:
    project.server.latency = 0.05
    project.suite("test_a.yaml", many_cases(30, "a"))
    project.suite("test_b.yaml", many_cases(30, "b"))

    result = project.run("--grok-max-concurrent=4", *xdist)

    result.assert_outcomes(passed=60)
    assert project.server.request_count == 60
    assert 2 <= project.server.peak_in_flight <= 4


@XDIST
def test_recordings_made_under_xdist_replay_under_xdist_with_the_server_stopped(
    project: Project, xdist: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_a.yaml", many_cases(12, "a"))
    project.suite("test_b.yaml", many_cases(12, "b"))
    project.run(*xdist).assert_outcomes(passed=24)
    recorded = entries(project, "test_a.yaml") | entries(project, "test_b.yaml")
    project.server.stop()
    monkeypatch.delenv("XAI_API_KEY")

    result = project.run("-n", "2")

    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["requests: 0 sent, 24 replayed*"])
    assert len(recorded) == 24


def test_recordings_made_with_and_without_xdist_hold_the_same_entries(
    project: Project,
) -> None:
    project.suite("test_a.yaml", many_cases(10, "a"))
    project.run("-n", "3").assert_outcomes(passed=10)
    with_xdist = entries(project, "test_a.yaml")
    project.recording("test_a.yaml").unlink()

    project.run().assert_outcomes(passed=10)

    assert entries(project, "test_a.yaml") == with_xdist


def entries(project: Project, suite: str) -> dict[str, tuple[str, str, str]]:
    """Case, fingerprint and response text of every recorded sample."""
    document = json.loads(project.recording(suite).read_text())
    return {
        f"{suite}::{name}#{s['sample']}": (name, s["fingerprint"], s["response"]["text"])
        for name, samples in document["entries"].items()
        for s in samples
    }


def summary(result: pytest.RunResult) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.match(r"-+ grokeval -+", line))
    wanted = ("items:", "requests:", "tokens:")
    return [line for line in lines[start:] if line.startswith(wanted)]


def test_the_summary_under_xdist_has_the_same_totals_as_without(project: Project) -> None:
    project.suite("test_a.yaml", many_cases(9, "a"))
    project.suite(
        "test_b.yaml",
        "cases:\n  - id: same1\n    prompt: a question 1\n  - id: same2\n    prompt: b\n",
    )
    project.server.add_fault(Reply(status=503), first=2)
    plain = summary(project.run("--grok-record=all"))
    project.server.reset()
    project.server.add_fault(Reply(status=503), first=2)

    distributed = project.run("--grok-record=all", "-n", "3")

    assert summary(distributed) == plain
    assert plain[1] == "requests: 10 sent, 0 replayed, 1 deduplicated, 2 retried, 0 failed"
    distributed.stdout.no_fnmatch_line("*gw?*grokeval*")


CRASHING_LEADER = """
import os, signal
from pathlib import Path

def pytest_configure_node(node):
    # Tell the test where the run's shared folder is, so it can find the leader.
    Path("shared_dir.txt").write_text(node.workerinput["grokeval_shared_dir"])
"""


def test_a_leader_that_dies_fails_the_other_workers_items_with_a_clear_message(
    project: Project,
) -> None:
    project.pytester.makeconftest(CRASHING_LEADER)
    project.suite("test_a.yaml", many_cases(8, "a"))

    def kill_the_leader(request: FakeRequest) -> Reply:
        shared = Path(project.path / "shared_dir.txt").read_text()
        os.kill(int((Path(shared) / "leader").read_text()), signal.SIGKILL)
        return Reply(hang=True)

    project.server.responder = kill_the_leader

    result = project.run("-n", "2", "--grok-max-concurrent=1", "-p", "no:cacheprovider")

    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*the xdist worker fetching responses for the run (pid *) exited before it finished*"]
    )
    assert project.server.request_count == 1


def test_an_error_that_stops_the_run_reaches_the_other_workers_instead_of_failing_their_items(
    project: Project,
) -> None:
    project.suite("test_a.yaml", many_cases(8, "a"))
    with FakeGrok(api_keys={"xai-some-other-key"}) as strict:
        result = project.run("-n", "2", "--grok-base-url", strict.url)
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["grokeval: HTTP 400: Incorrect API key provided*"])
    # A worker that did not hear of the error would run its items as "not sent" failures.
    assert "not sent" not in result.stdout.str()
    assert not [line for line in result.outlines if " PASSED" in line]


def test_a_fatal_api_error_stops_every_worker_with_its_message(project: Project) -> None:
    project.suite("test_a.yaml", many_cases(8, "a"))
    project.server.add_fault(Reply(status=401, error="No Authorization header"))

    result = project.run("-n", "2", "--grok-max-concurrent=1")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    outcomes = result.parseoutcomes()
    assert not {"passed", "failed", "errors", "error"} & set(outcomes), outcomes
    result.stdout.fnmatch_lines(["*grokeval: *the API refused the key; check it*"])
    assert project.server.request_count == 1
