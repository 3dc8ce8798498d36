"""Issue 5: repeated samples with pass rates and early stopping, and the judge check."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest
from conftest import Project

from pytest_grokeval.checks.judge import JUDGE_SYSTEM
from pytest_grokeval.testing import FakeRequest, Reply

RIGHT, WRONG = "The answer is 42.", "I do not know."


def alternating(first_right: dict[str, bool]) -> Callable[[FakeRequest], Reply]:
    """Each prompt's answers alternate right and wrong, in the order its requests arrive."""
    seen: Counter[str] = Counter()

    def respond(request: FakeRequest) -> Reply:
        right = first_right[request.prompt] != (seen[request.prompt] % 2 == 1)
        seen[request.prompt] += 1
        return Reply(content=RIGHT if right else WRONG)

    return respond


SAMPLED = """
cases:
  - id: {name}
    prompt: {prompt}
    repeat: 5
    min_pass_rate: 0.6
    expect: {{contains: "42"}}
"""


@pytest.mark.parametrize(
    ("prompt", "answers", "outcome", "requests"),
    [
        # 3 of 5 must pass, so at most 2 may fail. The first wave sends 3 samples at once (all
        # can matter); then one at a time, since one more result may decide.
        ("alternates from right", "RWR W R", "passed", 5),
        ("alternates from wrong", "WRW R W", "failed", 5),
        ("always right", "RRR", "passed", 3),
        ("always wrong", "WWW", "failed", 3),
    ],
)
def test_repeated_samples_stop_as_soon_as_the_pass_rate_is_decided(
    project: Project, prompt: str, answers: str, outcome: str, requests: int
) -> None:
    first_right = {
        "alternates from right": True, "alternates from wrong": False,
        "always right": True, "always wrong": False,
    }
    if prompt.startswith("always"):
        project.server.responder = lambda r: Reply(
            content=RIGHT if first_right[r.prompt] else WRONG
        )
    else:
        project.server.responder = alternating(first_right)
    project.suite("test_rate.yaml", SAMPLED.format(name="sampled", prompt=prompt))

    result = project.run()

    result.assert_outcomes(**{outcome: 1})
    assert project.server.request_count == requests == len(answers.replace(" ", ""))
    if outcome == "failed":
        passes = answers.count("R")
        result.stdout.fnmatch_lines(
            [f"pass rate {passes}/{requests} = *% < min_pass_rate 60% (95% CI *)*"]
        )
    if requests < 5:
        recorded = json.loads(project.recording("test_rate.yaml").read_text())["entries"]
        assert [s["sample"] for s in recorded["sampled"]] == list(range(requests))


def test_the_samples_of_a_wave_are_in_flight_together(project: Project) -> None:
    # Each answer takes a while, so samples sent together overlap at the server; samples sent
    # one after another never do. The first wave of "3 of 5 must pass" is 3 samples.
    project.server.latency = 1.0
    project.server.responder = lambda r: Reply(content=RIGHT)
    project.suite("test_sampled.yaml", SAMPLED.format(name="sampled", prompt="always right"))
    result = project.run()
    result.assert_outcomes(passed=1)
    assert project.server.request_count == 3
    assert project.server.peak_in_flight == 3


def test_a_failed_pass_rate_shows_every_sample_verdict_and_the_interval(project: Project) -> None:
    project.server.responder = lambda r: Reply(content=WRONG)
    project.suite("test_rate.yaml", SAMPLED.format(name="sampled", prompt="always wrong"))

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "pass rate 0/3 = 0% < min_pass_rate 60% (95% CI 0%-56%); stopped after 3 of 5 "
            "samples: the outcome was decided",
            "  sample 0: FAIL contains: 'I do not know.'",
            "  sample 1: FAIL contains: 'I do not know.'",
            "  sample 2: FAIL contains: 'I do not know.'",
            "",
            "first failing sample:",
            "check failed: contains",
        ]
    )


def test_each_sample_is_recorded_and_replayed_separately(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.server.responder = alternating({"alternates from right": True})
    project.suite("test_rate.yaml", SAMPLED.format(name="s", prompt="alternates from right"))
    project.run().assert_outcomes(passed=1)
    monkeypatch.delenv("XAI_API_KEY")

    result = project.run()

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["requests: 0 sent, 5 replayed*"])
    recorded = json.loads(project.recording("test_rate.yaml").read_text())["entries"]["s"]
    assert sorted(s["response"]["text"] for s in recorded) == sorted([RIGHT] * 3 + [WRONG] * 2)
    assert len({s["fingerprint"] for s in recorded}) == 5


JUDGED = """
cases:
  - id: polite
    prompt: Say something polite.
    expect:
      judge: The response is polite.
  - id: rude
    prompt: Say something rude.
    expect:
      judge: {rubric: The response is polite., model: grok-judge}
  - id: not-rude
    prompt: Say something rude again.
    expect:
      not_judge: The response is polite.
  - id: broken-judge
    prompt: Say anything.
    expect:
      judge: Anything at all.
"""


def grader(request: FakeRequest) -> Reply:
    """Answers cases with their prompt's mood, and grades them like a judge would."""
    system = request.body["messages"][0]["content"]
    if system != JUDGE_SYSTEM:
        mood = "rude" if "rude" in request.prompt else "polite"
        return Reply(content=f"A {mood} answer.")
    if "Anything at all" in request.prompt:
        return Reply(content="I think it passes.")
    if "polite answer" in request.prompt:
        return Reply(content='{"pass": true, "reason": "It thanks the user."}')
    return Reply(content='{"pass": false, "reason": "It insults the user."}')


def test_the_judge_grades_each_response_and_its_reason_shows(project: Project) -> None:
    project.server.responder = grader
    project.suite("test_judged.yaml", JUDGED)

    result = project.run("--grok-max-concurrent=2", "-rA")

    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*grok case: rude*",
            "check failed: judge",
            "  judge: expected the judge says the response meets 'The response is polite.'",
            "*got It insults the user.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of grok case: broken-judge*",
            "judge error in sample 0: the judge's reply is not a JSON verdict: "
            "'I think it passes.'",
        ]
    )
    graders = [e for e in project.server.log if e.body["messages"][0]["content"] == JUDGE_SYSTEM]
    assert len(graders) == 4 and project.server.request_count == 8
    assert {e.model for e in graders} == {"grok-4.3", "grok-judge"}
    assert project.server.peak_in_flight <= 2


def test_judge_replies_are_recorded_and_replayed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.server.responder = grader
    project.suite("test_judged.yaml", JUDGED)
    project.run().assert_outcomes(passed=2, failed=1, errors=1)
    recorded = json.loads(project.recording("test_judged.yaml").read_text())["entries"]
    assert "polite judge" in recorded and "not-rude not_judge" in recorded
    monkeypatch.delenv("XAI_API_KEY")

    result = project.run()

    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(["requests: 0 sent, 8 replayed*"])
    result.stdout.no_fnmatch_line("*unused recording*")


def test_the_judge_model_comes_from_the_ini_option(project: Project) -> None:
    project.server.responder = grader
    project.pytester.makeini(
        "[pytest]\ngrok_judge_model = grok-grader\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    project.suite("test_judged.yaml", JUDGED.split("  - id: rude")[0])

    project.run().assert_outcomes(passed=1)

    assert [e.model for e in project.server.log] == ["grok-4.3", "grok-grader"]
