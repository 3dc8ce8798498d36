"""The request engine under real API conditions, through pytest and the fake Grok (SPEC §5, §8)."""

from __future__ import annotations

import json
import re
import signal
from itertools import pairwise

import pytest
from conftest import API_KEY, Project

from pytest_grokeval.testing import FakeGrok, Reply


def numbered(count: int, *, head: str = "") -> str:
    """A suite of `count` cases case-0, case-1, ... whose prompts are 'prompt 0', 'prompt 1', ..."""
    cases = "".join(f"  - id: case-{i}\n    prompt: prompt {i}\n" for i in range(count))
    return f"{head}cases:\n{cases}"


def named(*names: str) -> str:
    """A suite with one case per name, each prompting with its own name."""
    return "cases:\n" + "".join(f"  - id: {name}\n    prompt: {name}\n" for name in names)


def arrivals(server: FakeGrok) -> list[float]:
    """When each request reached the server, in order (the server's monotonic clock)."""
    return sorted(entry.started for entry in server.log)


def prompts(server: FakeGrok, needle: str) -> list[str]:
    return [entry.prompt for entry in server.log if needle in entry.prompt]


def assert_stopped(result: pytest.RunResult, message: str, sent: int) -> None:
    """The run stopped in the prefetch: one line says why, no item ran, and the exit says so."""
    assert result.ret == pytest.ExitCode.INTERRUPTED
    said = [line for line in result.outlines if message in line]
    assert len(said) == 1, result.outlines
    assert "grokeval:" in said[0]
    assert not [line for line in result.outlines if re.match(r"(PASSED|FAILED|ERROR) ", line)]
    # Only the requests already in flight when the first answer came (default concurrency 4).
    assert 1 <= sent <= 4


# -- retries ------------------------------------------------------------------------------------


def test_a_429_on_every_third_request_pauses_all_sending_and_every_case_still_passes(
    project: Project,
) -> None:
    # Many slots and a little latency, so that the 429s of one wave land together and their
    # pauses overlap: a handful of one-second pauses in all.
    project.server.latency = 0.05
    project.server.add_fault(Reply(status=429, error="slow down", retry_after=1), every=3)
    project.suite("test_many.yaml", numbered(30))
    result = project.run("--grok-max-concurrent", "30", "--grok-retries", "8")
    result.assert_outcomes(passed=30)
    log = project.server.log
    limited = [entry for entry in log if entry.status == 429]
    assert len(limited) >= 10
    # Requests in flight when a 429 came were answered, not abandoned and sent again.
    assert len(log) == 30 + len(limited)
    for entry in limited:
        # The client reads the 429 just after the server logs it finished, and from then on
        # holds every new request for retry-after (1 s). Requests it had already sent may still
        # arrive in the first instants: the 0.1 s allowance covers those, and nothing else.
        quiet_from, quiet_to = entry.finished + 0.1, entry.finished + 0.9
        during = [other.index for other in log if quiet_from <= other.started <= quiet_to]
        assert not during, f"requests {during} arrived during the pause after {entry.index}"


def test_a_429_holds_back_the_requests_waiting_for_a_slot_not_only_its_own_retry(
    project: Project,
) -> None:
    # Two slots and a queue of new requests behind them: only a global pause keeps the queue
    # from going out while the rate-limited request waits.
    project.server.latency = 0.05
    project.server.add_fault(Reply(status=429, error="slow down", retry_after_ms=300), first=1)
    project.suite("test_many.yaml", numbered(8))
    result = project.run("--grok-max-concurrent", "2")
    result.assert_outcomes(passed=8)
    log = project.server.log
    (limited,) = [entry for entry in log if entry.status == 429]
    # The client reads the 429 after the server logs it finished, then holds everything new;
    # only the first two requests (one per slot) went out before it could have read it.
    pause = (limited.finished, limited.finished + 0.3)
    during = [e.index for e in log if e.index >= 2 and pause[0] <= e.started < pause[1]]
    assert not during, f"requests {during} arrived during the pause"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_ms_on_a_429_or_a_503_is_honoured(project: Project, status: int) -> None:
    project.server.add_fault(Reply(status=status, retry_after_ms=300), first=1)
    project.suite("test_one.yaml", numbered(1))
    result = project.run()
    result.assert_outcomes(passed=1)
    refused, answered = project.server.log
    assert (refused.status, answered.status) == (status, 200)
    # The retry base delay is 0.01 s, so only the header can account for this gap.
    assert answered.started - refused.finished >= 0.3


def test_retries_wait_for_a_free_slot_like_first_attempts(project: Project) -> None:
    # Every other request fails once: its retries compete with the queue of first attempts.
    project.server.latency = 0.02
    project.server.add_fault(Reply(status=500), every=2)
    project.suite("test_many.yaml", numbered(20))
    result = project.run("--grok-max-concurrent", "2", "--grok-retries", "8")
    result.assert_outcomes(passed=20)
    assert any(entry.status == 500 for entry in project.server.log)
    assert project.server.peak_in_flight <= 2


def test_a_500_on_the_first_attempt_is_retried_and_the_case_passes(project: Project) -> None:
    project.server.add_fault(Reply(status=500), first=1)
    project.suite("test_one.yaml", numbered(1))
    result = project.run()
    result.assert_outcomes(passed=1)
    assert [entry.status for entry in project.server.log] == [500, 200]
    result.stdout.fnmatch_lines(["requests: 1 sent, * 1 retried, 0 failed"])


def test_a_permanent_500_fails_only_its_case_after_exactly_grok_retries_retries(
    project: Project,
) -> None:
    project.server.add_fault(Reply(status=500, error="upstream exploded"), match="doomed")
    project.suite("test_mixed.yaml", named("fine", "doomed", "also-fine"))
    result = project.run("--grok-retries", "3", "-vv")
    result.assert_outcomes(passed=2, failed=1)
    assert len(prompts(project.server, "doomed")) == 1 + 3
    result.stdout.fnmatch_lines(
        [
            "FAILED test_mixed.yaml::doomed - request failed: "
            "HTTP 500: upstream exploded (gave up after 3 retries)"
        ]
    )


def test_without_retry_after_the_wait_before_each_retry_doubles(project: Project) -> None:
    project.server.add_fault(Reply(status=503))
    project.suite("test_one.yaml", numbered(1))
    result = project.run("-o", "grok_retry_base_delay=0.1", "--grok-retries", "3")
    result.assert_outcomes(failed=1)
    log = project.server.log
    waits = [later.started - earlier.finished for earlier, later in pairwise(log)]
    # Jitter draws each wait between half and all of 0.1 s, 0.2 s, 0.4 s.
    assert len(waits) == 3
    assert all(wait >= 0.05 * 2**retry for retry, wait in enumerate(waits)), waits


def test_a_dropped_connection_is_retried_and_the_case_passes(project: Project) -> None:
    project.server.add_fault(Reply(drop=True), first=1)
    project.suite("test_one.yaml", numbered(1))
    result = project.run()
    result.assert_outcomes(passed=1)
    # The fake logs a request it dropped with status 0.
    assert [entry.status for entry in project.server.log] == [0, 200]


def test_a_hanging_request_times_out_at_grok_timeout_and_fails_only_its_case(
    project: Project,
) -> None:
    project.server.add_fault(Reply(hang=True), match="stuck")
    project.suite("test_mixed.yaml", named("fine", "stuck", "also-fine"))
    result = project.run("--grok-timeout", "0.3", "--grok-retries", "1", "-vv")
    result.assert_outcomes(passed=2, failed=1)
    assert len(prompts(project.server, "stuck")) == 2
    result.stdout.fnmatch_lines(
        [
            "FAILED test_mixed.yaml::stuck - request timed out: "
            "timed out after 0.3 s (--grok-timeout) (gave up after 1 retry)"
        ]
    )
    project.server.wait_for_idle()


def test_a_malformed_json_answer_fails_only_its_case(project: Project) -> None:
    project.server.add_fault(Reply(bad_json=True), match="garbled")
    project.suite("test_mixed.yaml", named("fine", "garbled", "also-fine"))
    result = project.run("--grok-retries", "1", "-vv")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_mixed.yaml::garbled - request failed: malformed response: *"]
    )


def test_a_failed_case_names_the_case_the_status_and_the_api_message(project: Project) -> None:
    too_long = (
        "This model's maximum prompt length is 131072 but the request contains 179111 tokens."
    )
    project.server.add_fault(Reply(status=400, error=too_long), match="huge")
    project.suite("test_mixed.yaml", named("fine", "huge"))
    result = project.run("-vv")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [f"FAILED test_mixed.yaml::huge - request failed: HTTP 400: {too_long}"]
    )
    # A request the API calls invalid is not sent again.
    assert len(prompts(project.server, "huge")) == 1


# -- errors that stop the run -------------------------------------------------------------------


def test_a_refused_api_key_stops_the_prefetch_with_one_message_and_a_nonzero_exit(
    project: Project,
) -> None:
    project.suite("test_many.yaml", numbered(100))
    # A server that knows another key answers like xAI: 400 "Incorrect API key provided".
    with FakeGrok(api_keys={"xai-some-other-key"}) as strict:
        result = project.run("--grok-base-url", strict.url)
        sent = strict.request_count
    assert_stopped(result, "Incorrect API key provided", sent)


def test_a_429_saying_the_credits_are_used_up_stops_the_run(project: Project) -> None:
    no_credits = (
        "Your team abc has either used all available credits or reached its monthly spending "
        "limit. To continue making API requests, please purchase more credits or raise your "
        "spending limit."
    )
    project.server.add_fault(Reply(status=429, error=no_credits, retry_after=1))
    project.suite("test_many.yaml", numbered(20))
    result = project.run()
    assert_stopped(result, "used all available credits", project.server.request_count)


def test_a_404_for_an_unknown_model_stops_the_run(project: Project) -> None:
    # A model the catalog lists but the team cannot use: only the request finds out.
    unknown = "The model grok-4.7 does not exist or your team does not have access to it."
    project.server.add_fault(Reply(status=404, error=unknown))
    project.suite("test_many.yaml", numbered(20))
    result = project.run("--grok-model", "grok-4.7")
    assert_stopped(result, "The model grok-4.7 does not exist", project.server.request_count)


# -- budgets ------------------------------------------------------------------------------------


def test_grok_rpm_keeps_arrivals_within_budget_without_waiting_for_slow_answers(
    project: Project,
) -> None:
    # Answers slower than the 1 s window. The engine must neither let a third request arrive
    # within a second of the first, nor hold each request's slot until its answer (which would
    # cap the run at rpm/60 requests in flight: with minute-long answers, a few a minute).
    project.server.latency = 2.5
    project.suite("test_many.yaml", numbered(4))
    result = project.run_subprocess("--grok-rpm", "120", timeout=60)
    result.assert_outcomes(passed=4)
    log = sorted(project.server.log, key=lambda entry: entry.started)
    assert len(log) == 4
    gaps = [third.started - first.started for first, third in zip(log, log[2:], strict=False)]
    assert min(gaps) >= 1.0, gaps
    # The third request went out while the first was still being answered.
    assert log[2].started < log[0].finished, [(e.started, e.finished) for e in log]


def test_grok_tpm_never_lets_more_than_its_per_second_share_of_tokens_arrive(
    project: Project,
) -> None:
    # 6000 tokens a minute is 100 a second. Each request is estimated at 2 prompt tokens plus its
    # max_tokens of 40, and the server bills exactly that: two fit in a second, three do not.
    project.server.add_fault(Reply(usage={"completion_tokens": 40}))
    project.suite("test_many.yaml", numbered(6, head="params: {max_tokens: 40}\n"))
    result = project.run("--grok-tpm", "6000")
    result.assert_outcomes(passed=6)
    times = arrivals(project.server)
    assert len(times) == 6
    gaps = [third - first for first, third in zip(times, times[2:], strict=False)]
    assert min(gaps) >= 1.0, gaps


def test_a_max_cost_below_the_estimate_refuses_to_start_and_says_the_estimate(
    project: Project,
) -> None:
    # Each request: 8 prompt characters (2 tokens at $1.25/M) and 1000 output tokens at $2.50/M.
    project.suite("test_many.yaml", numbered(3, head="params: {max_tokens: 1000}\n"))
    result = project.run("--grok-max-cost", "0.001")
    project.assert_sent_nothing(
        result,
        pytest.ExitCode.INTERRUPTED,
        "*grokeval: the estimated cost of 3 requests is $0.007508, over --grok-max-cost $0.001;"
        " nothing was sent*",
    )


def test_sending_stops_once_the_spent_cost_reaches_grok_max_cost(project: Project) -> None:
    # The API's own cost figure ($1 an answer) is far above the estimate, so the run starts.
    project.server.add_fault(Reply(usage={"cost_in_usd_ticks": 10_000_000_000}))
    project.suite("test_many.yaml", numbered(5))
    result = project.run("--grok-max-cost", "1.5", "--grok-max-concurrent", "1", "-vv")
    result.assert_outcomes(passed=2, failed=3)
    assert project.server.request_count == 2
    result.stdout.fnmatch_lines(
        ["FAILED test_many.yaml::case-2 - request not sent: "
         "the run has already spent $2.000000 of --grok-max-cost $1.5"]
    )


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_in_the_prefetch_keeps_every_response_received_for_replay(
    project: Project,
) -> None:
    answered = 20
    # Later requests hang. The engine sends request N+4 only after one of its 4 slots is free,
    # and a slot frees only once its response has been handed over for recording; so when the
    # 24th request arrives, exactly the first 20 responses have been received.
    project.server.responder = lambda r: Reply(hang=True) if r.index >= answered else None
    project.suite("test_many.yaml", numbered(200))
    with project.spawn() as process:
        project.server.wait_for_requests(answered + 4, timeout=60)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    received = {e.prompt.replace("prompt ", "case-") for e in project.server.log if e.status == 200}
    assert len(received) == answered
    recorded = json.loads(project.recording("test_many.yaml").read_text())["entries"]
    assert set(recorded) == received

    project.server.responder = None
    replay = project.run("--grok-record=none", "-q")
    replay.assert_outcomes(passed=answered, failed=200 - answered)
    assert project.server.request_count == answered + 4
    failures = [line for line in replay.outlines if line.startswith("FAILED")]
    assert all("no recorded response: no recording of" in line for line in failures)


INTERRUPT_AT_THE_THIRD_ANSWER = """
import pytest_grokeval.prefetch.session
from pytest_grokeval.report.terminal import Progress


class InterruptAtTheThirdAnswer(Progress):
    # The engine reports progress right after handing a response over, before the item that
    # asked for it resumes: the moment a Ctrl-C is most likely to lose a response.
    def update(self, stats):
        if stats.done == 3:
            raise KeyboardInterrupt


pytest_grokeval.prefetch.session.Progress = InterruptAtTheThirdAnswer
"""


def test_a_response_is_recorded_when_it_arrives_even_if_its_item_never_resumes(
    project: Project,
) -> None:
    project.pytester.makeconftest(INTERRUPT_AT_THE_THIRD_ANSWER)
    project.suite("test_many.yaml", numbered(10))
    result = project.run_subprocess("--grok-max-concurrent", "1")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    recorded = json.loads(project.recording("test_many.yaml").read_text())["entries"]
    assert sorted(recorded) == ["case-0", "case-1", "case-2"]


# -- what the user sees -------------------------------------------------------------------------


def test_the_summary_counts_requests_tokens_cost_latency_prefetch_time_and_model_drift(
    project: Project,
) -> None:
    project.suite("test_mixed.yaml", named("old"))
    project.run().assert_outcomes(passed=1)
    project.server.add_fault(Reply(status=500), first=1, match="flaky")
    project.server.add_fault(Reply(status=400, error="bad argument"), match="broken")
    project.server.model_aliases["grok-4.3"] = "grok-4.3-0514"
    project.suite(
        "test_mixed.yaml",
        named("old", "flaky", "broken")
        + "  - id: same-as-flaky\n    prompt: flaky\n",
    )
    result = project.run()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- grokeval -*",
            "items: 4",
            "requests: 2 sent, 1 replayed, 1 deduplicated, 1 retried, 1 failed",
            "tokens: * in, * out; cost $0.0000*",
            "latency: p50 * ms, p95 * ms, max * ms",
            "prefetch: *s wall",
            "WARNING model drift: flaky: asked for 'grok-4.3', 'grok-4.3-0514' answered",
        ]
    )


def test_under_q_nothing_from_grokeval_comes_before_the_results(project: Project) -> None:
    project.suite("test_many.yaml", numbered(3))
    result = project.run("-q")
    result.assert_outcomes(passed=3)
    first_result = next(i for i, line in enumerate(result.outlines) if "[100%]" in line)
    assert not [line for line in result.outlines[:first_result] if "grokeval" in line]


def test_without_a_terminal_progress_is_one_final_fetched_line(project: Project) -> None:
    project.server.add_fault(Reply(status=500), first=1)
    project.suite("test_many.yaml", numbered(3))
    result = project.run()
    result.assert_outcomes(passed=3)
    fetched = [line for line in result.outlines if line.startswith("grokeval: fetched")]
    assert len(fetched) == 1
    assert re.fullmatch(r"grokeval: fetched 3/3 requests in \d+\.\ds \(1 retry\)", fetched[0])
    assert "in flight" not in result.stdout.str()
    assert "\r" not in result.stdout.str()


def test_on_a_terminal_a_live_line_shows_done_in_flight_retries_and_elapsed(
    project: Project,
) -> None:
    project.suite("test_many.yaml", numbered(3))
    returncode, output = project.run_on_terminal()
    assert returncode == 0, output
    assert re.search(r"grokeval: \d/3 done, \d in flight, \d retr(y|ies), \d+\.\ds", output), output
    assert re.search(r"\rgrokeval: fetched 3/3 requests in \d+\.\ds \(0 retries\)", output), output


def test_the_api_key_never_appears_in_output_or_recordings(project: Project) -> None:
    project.server.add_fault(Reply(status=500, error="upstream exploded"), match="doomed")
    project.server.add_fault(Reply(status=429, retry_after_ms=10), first=1)
    project.suite("test_mixed.yaml", named("fine", "doomed"))
    result = project.run("-vv", "-rA", "--grok-retries", "1", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    with FakeGrok(api_keys={"xai-some-other-key"}) as strict:
        refused = project.run("--grok-base-url", strict.url, "--grok-record=all")
    assert refused.ret == pytest.ExitCode.INTERRUPTED
    written = [p.read_text() for p in project.path.rglob("*") if p.suffix in (".json", ".xml")]
    assert written
    for text in [*written, *(r.stdout.str() + r.stderr.str() for r in (result, refused))]:
        assert API_KEY not in text


def test_a_refused_key_is_shown_only_as_its_first_and_last_two_characters(
    project: Project,
) -> None:
    project.suite("test_one.yaml", numbered(1))
    with FakeGrok(api_keys={"xai-some-other-key"}) as strict:
        refused = project.run("--grok-base-url", strict.url)
    assert refused.ret == pytest.ExitCode.INTERRUPTED
    output = refused.stdout.str() + refused.stderr.str()
    assert f"Incorrect API key provided: {API_KEY[:2]}***{API_KEY[-2:]}." in output
    # Not the whole key, and no run of eight of its characters either: a key with a few
    # characters masked is as good as the key.
    leaked = [API_KEY[i : i + 8] for i in range(len(API_KEY) - 7) if API_KEY[i : i + 8] in output]
    assert not leaked
