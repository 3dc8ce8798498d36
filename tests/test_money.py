"""Issue 12: a timeout bounds an attempt, every attempt is counted, unknown is never zero."""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

import pytest
from conftest import INI, Project

from pytest_grokeval.checks.judge import JUDGE_SYSTEM
from pytest_grokeval.report.schema import validator
from pytest_grokeval.testing import FakeGrok, FakeRequest, Reply
from pytest_grokeval.testing.models import DEFAULT_MODELS, Catalog, ModelSpec

# One attempt of a case prompting "stuck" with max_tokens 1000 at grok-4.3's price: 5 characters
# (1.25 tokens at $1.25/M) plus 1000 output tokens at $2.50/M.
ONE_ATTEMPT = (1.25 * 1.25 + 1000 * 2.50) / 1_000_000
STUCK = "params: {max_tokens: 1000}\ncases:\n  - id: stuck\n    prompt: stuck\n"
ONE = "cases:\n  - id: one\n    prompt: one\n"

NO_CREDITS = (
    "Your team abc has either used all available credits or reached its monthly spending "
    "limit. To continue making API requests, please purchase more credits or raise your "
    "spending limit."
)
PERMISSION = "The caller does not have permission to execute the specified operation"


def report(project: Project) -> dict[str, Any]:
    document = json.loads((project.path / "report.json").read_text())
    errors = [e.message for e in validator().iter_errors(document)]
    assert not errors, errors
    return dict(document)


def failure(result: pytest.RunResult) -> str:
    (line,) = [line for line in result.outlines if line.startswith("FAILED ")]
    return line


# -- the timeout bounds one whole attempt -------------------------------------------------------


def test_a_hanging_prompt_is_sent_twice_at_most_and_both_attempts_are_counted_as_possibly_billed(
    project: Project,
) -> None:
    project.server.add_fault(Reply(hang=True))
    project.suite("test_stuck.yaml", STUCK)
    result = project.run("--grok-timeout", "1", "--grok-report", "report.json", "-vv")
    result.assert_outcomes(failed=1)
    # --grok-retries is 4, but a timed-out attempt is retried once.
    assert project.server.request_count == 2
    assert "timed out after 1 s (--grok-timeout) (gave up after 1 retry)" in failure(result)
    possible = f"${2 * ONE_ATTEMPT:.6f}"
    result.stdout.fnmatch_lines(
        [
            f"attempts: 2, 2 of unknown cost (*): up to {possible} possibly billed",
            "tokens: unknown (2 attempts without a response); "
            f"cost unknown (up to {possible} possibly billed)",
        ]
    )
    requests = report(project)["summary"]["requests"]
    assert requests["attempts"] == 2 and requests["unsettled"] == 2
    assert requests["possibly_billed_usd"] == pytest.approx(2 * ONE_ATTEMPT)
    project.server.wait_for_idle()


def test_grok_max_cost_counts_a_timed_out_attempt_and_does_not_send_the_retry(
    project: Project,
) -> None:
    project.server.add_fault(Reply(hang=True))
    project.suite("test_stuck.yaml", STUCK)
    limit = f"{ONE_ATTEMPT * 1.2:.6f}"
    result = project.run("--grok-timeout", "1", "--grok-max-cost", limit, "-vv")
    result.assert_outcomes(failed=1)
    assert project.server.request_count == 1
    assert re.search(
        r"request not sent: the run has spent \$0\.002502 \(\$0\.002502 of it possibly billed\) "
        rf"and this attempt could cost up to \$0\.002502, over --grok-max-cost \${limit}",
        failure(result),
    ), failure(result)
    # The retry the budget refused was never sent: not counted as one.
    result.stdout.fnmatch_lines(["requests: 1 sent, * 0 retried, 1 failed"])
    project.server.wait_for_idle()


def test_a_body_trickling_in_byte_by_byte_times_out_at_grok_timeout(project: Project) -> None:
    # About 400 bytes at one every 0.1 s: some 40 s, though no single read waits 2 s.
    project.server.add_fault(Reply(trickle=0.1))
    project.suite("test_one.yaml", ONE)
    started = time.monotonic()
    result = project.run("--grok-timeout", "2", "--grok-retries", "0", "-vv")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    assert "timed out after 2 s (--grok-timeout)" in failure(result)
    assert project.server.request_count == 1
    assert elapsed < 30, "the whole body was read: the timeout bounded each read only"


def test_a_closed_port_fails_fast_saying_connection_failed(project: Project) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    project.suite("test_one.yaml", ONE)
    result = project.run("--grok-base-url", f"http://127.0.0.1:{port}/v1", "-vv")
    result.assert_outcomes(failed=1)
    line = failure(result)
    assert "request failed: connection failed: " in line, line
    assert "timed out" not in line
    # A refused connection never reached a server: nothing possibly billed.
    result.stdout.fnmatch_lines(["attempts: 5", "tokens: 0 in, 0 out; cost $0.000000"])


def test_a_connection_dropped_after_sending_says_so_and_is_counted_as_possibly_billed(
    project: Project,
) -> None:
    project.server.add_fault(Reply(drop=True))
    project.suite("test_one.yaml", ONE)
    result = project.run("--grok-retries", "1", "-vv")
    result.assert_outcomes(failed=1)
    assert "request failed: connection failed: " in failure(result)
    result.stdout.fnmatch_lines(["attempts: 2, 2 of unknown cost (*): up to $* possibly billed"])


# -- unknown is unknown -------------------------------------------------------------------------


def test_a_reply_without_usage_fails_a_tokens_check_and_is_stored_as_unknown(
    project: Project,
) -> None:
    project.server.add_fault(Reply(omit_usage=True))
    project.suite("test_one.yaml", ONE + "    expect: {tokens: {max: 0}}\n")
    result = project.run("--grok-report", "report.json", "--grok-html", "report.html", "-vv")
    result.assert_outcomes(failed=1)
    # The report's cards say unknown, not $0 and 0 tokens, when nothing is known.
    cards = re.findall(
        r'<span class="label">(cost|tokens)</span><span class="value">([^<]*)</span>',
        (project.path / "report.html").read_text(),
    )
    assert cards == [("cost", "unknown"), ("tokens", "unknown")]
    result.stdout.fnmatch_lines(
        [
            "*got the token count is unknown: the response reported no usage",
            "tokens: unknown (1 response without usage); cost unknown (up to $* possibly billed)",
        ]
    )
    (entry,) = json.loads(project.recording("test_one.yaml").read_text())["entries"]["one"]
    assert (entry["response"]["usage"], entry["response"]["cost_usd"]) == (None, None)
    (item,) = report(project)["items"]
    assert (item["tokens"], item["cost_usd"]) == (None, None)
    # Replayed, the recording still says unknown, and the check still fails.
    replay = project.run("--grok-record=none", "-vv")
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(["*the token count is unknown*"])


@pytest.mark.parametrize(
    "usage", [{"prompt_tokens": -5}, {"completion_tokens": "many"}, {"total_tokens": 2}]
)
def test_invalid_usage_counts_as_unknown(project: Project, usage: dict[str, object]) -> None:
    # A NaN arrives as a float: the same path as any count that is not a non-negative int.
    body = {
        "model": "grok-4.3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, **usage},
    }
    project.server.add_fault(Reply(raw_body=json.dumps(body)))
    project.suite("test_one.yaml", ONE + "    expect: {tokens: {max: 100}}\n")
    result = project.run("-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the token count is unknown*"])


def test_a_responses_usage_whose_total_is_below_input_plus_output_counts_as_unknown(
    project: Project,
) -> None:
    body = {
        "object": "response", "status": "completed", "model": "grok-4.3",
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi"}]}],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 1},
    }
    project.server.add_fault(Reply(raw_body=json.dumps(body)))
    project.suite("test_one.yaml", "api: responses\n" + ONE + "    expect: {tokens: {max: 5}}\n")
    result = project.run("-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the token count is unknown*"])


def _unpriced_body(model: str) -> str:
    """A completion whose usage has no cost_in_usd_ticks, as a gateway or another API sends."""
    return json.dumps({
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
    })


def serve_an_unpriced_model(server: FakeGrok, name: str) -> None:
    """A model the API's catalog lists but the built-in price table does not know."""
    server.catalog = Catalog({**DEFAULT_MODELS, name: ModelSpec()})


def test_a_model_without_a_price_has_an_unknown_cost_until_grok_prices_names_it(
    project: Project,
) -> None:
    serve_an_unpriced_model(project.server, "grok-9")
    project.server.add_fault(Reply(raw_body=_unpriced_body("grok-9")))
    project.suite("test_one.yaml", ONE + "    expect: {cost_usd: 1}\n")
    result = project.run("--grok-model", "grok-9", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the cost is unknown: the response reported no cost, and its*",
        "tokens: 1,000 in, 1,000 out; cost unknown (1 of unknown price)",
    ])

    project.pytester.makeini(INI + "grok_prices =\n    grok-9: 3 1 7\n")
    priced = project.run("--grok-model", "grok-9", "--grok-record=all", "-vv")
    priced.assert_outcomes(passed=1)
    # 1000 tokens in at $3/M and 1000 out at $7/M.
    priced.stdout.fnmatch_lines(["tokens: 1,000 in, 1,000 out; cost $0.010000"])


def _some_without_usage(request: FakeRequest) -> Reply:
    if "warmly" in request.prompt or request.prompt == "blank":
        return Reply(content='{"pass": true, "reason": "fine"}', omit_usage=True)
    return _grader(request)


def test_a_cost_partly_unknown_says_how_many_responses_it_covers_never_a_bare_sum(
    project: Project,
) -> None:
    project.server.responder = _some_without_usage
    project.suite("test_three.yaml", """
        cases:
          - {id: one, prompt: one, expect: {judge: greets}}
          - {id: two, prompt: two, expect: {judge: greets warmly}}
          - {id: blank, prompt: blank}
    """)
    result = project.run("--grok-report", "report.json")
    result.assert_outcomes(passed=3)
    # Known: the replies to one and two ($0.003 each) and one's grader call ($0.007).
    result.stdout.fnmatch_lines([
        "tokens: *; cost $0.013000 for 3 responses, 2 more of unknown cost (up to $* possibly "
        "billed)",
        "  of which judge: 2 grader calls, 500 in, 20 out; cost $0.007000 for 1 call, "
        "1 more of unknown cost",
    ])
    summary = report(project)["summary"]
    assert (summary["cost_unknown"], summary["judge"]["cost_unknown"]) == (2, 1)


def test_a_budget_refusal_shows_enough_digits_to_be_over_the_limit(project: Project) -> None:
    # Two attempts, 1.5 prompt tokens and 2000 output tokens: $0.005001875, which four
    # decimals would show as $0.0050 and six as $0.005002, neither over the limit.
    project.suite("test_two.yaml", STUCK + "  - id: b\n    prompt: b\n")
    result = project.run("--grok-max-cost", "0.0050018")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*the estimated cost of 2 requests is $0.0050019, over --grok-max-cost $0.0050018;*"]
    )
    (line,) = [line for line in result.outlines if "estimated cost" in line]
    shown = float(line.split("is $")[1].split(",")[0])
    assert shown > 0.0050018, line


@pytest.mark.parametrize(
    ("model", "says"),
    [
        (
            "grok-4.33",
            "*'grok-4.33' has none (*); did you mean 'grok-4.3'?; nothing "
            "was sent. If the name is right, add it to *grok_prices*",
        ),
        (
            "grok-9",
            "*grokeval: --grok-max-cost needs a price for every model, and 'grok-9' has none *"
            "nothing was sent*grok_prices*",
        ),
    ],
    ids=["mistyped", "unpriced"],
)
def test_grok_max_cost_refuses_to_start_naming_a_model_without_a_price(
    project: Project, model: str, says: str
) -> None:
    # grok-9: in the API's catalog, not in the price table; grok-4.33: a typo, said as such.
    serve_an_unpriced_model(project.server, "grok-9")
    project.suite("test_one.yaml", ONE)
    result = project.run("--grok-model", model, "--grok-max-cost", "5")
    project.assert_sent_nothing(result, pytest.ExitCode.INTERRUPTED, says)


# -- errors say what happened -------------------------------------------------------------------


def test_a_429_about_requests_per_second_is_a_rate_limit_and_is_retried(project: Project) -> None:
    text = "Rate limit exceeded for requests per second quota; please retry shortly"
    project.server.add_fault(Reply(status=429, error=text, code="resource-exhausted"), first=1)
    project.suite("test_one.yaml", ONE)
    result = project.run()
    result.assert_outcomes(passed=1)
    assert [entry.status for entry in project.server.log] == [429, 200]


def test_a_429_about_a_per_minute_request_quota_is_retried_not_taken_for_no_credits(
    project: Project,
) -> None:
    project.server.add_fault(Reply(status=429, error="per-minute request quota exceeded"), first=1)
    project.suite("test_one.yaml", ONE)
    project.run().assert_outcomes(passed=1)
    assert [entry.status for entry in project.server.log] == [429, 200]


def test_a_403_saying_there_are_no_credits_stops_the_run_at_once(project: Project) -> None:
    project.server.add_fault(Reply(status=403, error=NO_CREDITS, code=PERMISSION))
    project.suite("test_many.yaml", "cases:\n" + "".join(
        f"  - id: case-{i}\n    prompt: prompt {i}\n" for i in range(20)
    ))
    result = project.run("--grok-max-concurrent", "1")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    said = [line for line in result.outlines if "used all available credits" in line]
    assert len(said) == 1, result.outlines
    assert "grokeval: HTTP 403: " in said[0]
    assert "add credits or raise the spending limit" in said[0]
    assert project.server.request_count == 1
    result.stdout.fnmatch_lines(["requests: 1 sent, * 1 failed"])


def test_a_403_refusing_one_prompts_content_fails_that_case_only_with_the_apis_message(
    project: Project,
) -> None:
    moderated = "Content violates usage guidelines. Failed check: SAFETY_CHECK_TYPE_CSAM"
    project.server.add_fault(Reply(status=403, error=moderated, code="permission-denied"),
                             match="bad")
    project.suite("test_two.yaml", "cases:\n  - id: bad\n    prompt: bad\n" + ONE[7:])
    result = project.run("-vv")
    result.assert_outcomes(passed=1, failed=1)
    line = failure(result)
    assert "test_two.yaml::bad" in line and f"HTTP 403: {moderated}" in line, line
    assert "key" not in result.stdout.str()


def test_a_403_saying_the_team_has_no_licenses_stops_the_run_saying_so(project: Project) -> None:
    project.server.add_fault(Reply(status=403, error="Your team has no licenses for this model."))
    project.suite("test_one.yaml", ONE)
    result = project.run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*HTTP 403: Your team has no licenses for this model. (the team has no license for this;"
        " see console.x.ai; the prefetch stopped)*"
    ])
    assert "add credits" not in result.stdout.str()


def test_a_200_holding_an_error_object_shows_the_servers_message(project: Project) -> None:
    body = json.dumps({"error": {"message": "upstream model crashed", "type": "server_error"}})
    project.server.add_fault(Reply(raw_body=body))
    project.suite("test_one.yaml", ONE)
    result = project.run("--grok-retries", "0", "-vv")
    result.assert_outcomes(failed=1)
    assert "the API answered 200 with an error: upstream model crashed" in failure(result)


def test_a_detail_body_shows_the_detail_text(project: Project) -> None:
    body = json.dumps({"detail": "Input validation error: messages must not be empty"})
    project.server.add_fault(Reply(status=422, raw_body=body))
    project.suite("test_one.yaml", ONE)
    result = project.run("-vv")
    result.assert_outcomes(failed=1)
    assert "HTTP 422: Input validation error: messages must not be empty" in failure(result)


# -- totals include the judge -------------------------------------------------------------------


def _grader(request: FakeRequest) -> Reply:
    if request.body["messages"][0]["content"] == JUDGE_SYSTEM:
        return Reply(content='{"pass": true, "reason": "fine"}', usage={
            "prompt_tokens": 500, "completion_tokens": 20, "cost_in_usd_ticks": 70_000_000})
    return Reply(content="Hello.", usage={
        "prompt_tokens": 10, "completion_tokens": 5, "cost_in_usd_ticks": 30_000_000})


def test_grader_calls_are_in_the_totals_and_shown_apart(project: Project) -> None:
    project.server.responder = _grader
    project.suite("test_one.yaml", ONE + "    expect: {judge: The response greets.}\n")
    result = project.run("--grok-report", "report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "tokens: 510 in, 25 out; cost $0.010000",
            "  of which judge: 1 grader call, 500 in, 20 out; cost $0.007000",
        ]
    )
    summary = report(project)["summary"]
    assert summary["tokens"]["total"] == 535
    assert summary["cost_usd"] == pytest.approx(0.01)
    assert summary["judge"]["cost_usd"] == pytest.approx(0.007)
    assert summary["requests"]["judge"]["calls"] == 1


def _slow_b_without_usage(request: FakeRequest) -> Reply:
    if request.body["messages"][0]["content"] == JUDGE_SYSTEM:
        return Reply(content='{"pass": true, "reason": "fine"}', omit_usage=True)
    return Reply(omit_usage=True, latency=2.0 if request.prompt == "hello b" else None)


def test_grok_max_cost_counts_the_attempts_in_flight_before_sending_a_grader_call(
    project: Project,
) -> None:
    # Answers without usage are possibly billed their whole estimate. Case a answers at once and
    # its grader call would fit beside the spent cost, but not beside case b, still in flight.
    project.server.responder = _slow_b_without_usage
    project.suite("test_two.yaml", """
        params: {max_tokens: 1000}
        cases:
          - {id: a, prompt: hello a, expect: {judge: is polite}}
          - {id: b, prompt: hello b, expect: {judge: is polite}}
    """)
    result = project.run("--grok-max-cost", "0.0054", "--grok-report", "report.json", "-rA")
    result.assert_outcomes(errors=2)
    requests = report(project)["summary"]["requests"]
    assert requests["attempts"] == 2
    assert requests["cost_usd"] + requests["possibly_billed_usd"] <= 0.0054
    result.stdout.fnmatch_lines(["*the run has spent $0.002502 ($0.002502 of it possibly billed), "
                                 "attempts in flight could cost up to $0.002502, and this attempt"
                                 " could cost up to $0.000829, over --grok-max-cost $0.0054"])
    project.server.wait_for_idle()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_attempts_and_unknown_usage_reach_the_summary_and_the_report_under_xdist(
    project: Project, xdist: list[str]
) -> None:
    project.server.add_fault(Reply(omit_usage=True), match="blank")
    project.suite("test_two.yaml", "cases:\n  - id: blank\n    prompt: blank\n" + ONE[7:])
    result = project.run("--grok-report", "report.json", "--grok-html", "report.html", *xdist)
    result.assert_outcomes(passed=2)
    assert "1 response without usage" in (project.path / "report.html").read_text()
    result.stdout.fnmatch_lines(
        [
            "attempts: 2, 1 of unknown cost (*)*",
            "tokens: *, more unknown (1 response without usage)*",
        ]
    )
    summary = report(project)["summary"]
    assert summary["requests"]["attempts"] == 2
    assert summary["requests"]["no_usage"] == 1
    assert summary["tokens"]["unknown"] == 1


def test_a_reply_the_transport_cannot_read_is_retried_counted_and_possibly_billed(
    project: Project,
) -> None:
    project.server.add_fault(Reply(status=99))  # an invalid HTTP status line, every time
    project.suite("test_one.yaml", ONE)

    result = project.run("--grok-retries=1")

    result.assert_outcomes(failed=1)
    # The SDK's floor reports it as a connection failure, later ones as an unreadable reply.
    result.stdout.fnmatch_lines([
        "request failed: *",
        "requests: 1 sent, 0 replayed, 0 deduplicated, 1 retried, 1 failed",
        "attempts: 2, 2 of unknown cost (*",
    ])
