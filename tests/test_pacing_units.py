"""Issue 15 pieces on their own: limits stated in 429s, the pacer, the Responses mapping."""

from __future__ import annotations

import pytest

from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.budgets import (
    LEARNED_SLACK,
    PROBE_INTERVAL,
    SLOW_START_CAP,
    Pacer,
    StatedLimit,
    stated_limit,
)
from pytest_grokeval.engine.wire import parse_completion, request_body

# -- limits stated in 429 texts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Too many requests for team t and model grok-4.3. Your team's rate limit is — "
            "Requests per Second (actual/limit): 2/2. Please slow down.",
            StatedLimit("requests", "second", 2),
        ),
        ("… Requests per Minute (actual/limit): 1922/60 …", StatedLimit("requests", "minute", 60)),
        ("Tokens per Minute (actual/limit): 10/5", StatedLimit("tokens", "minute", 5)),
        ("The model is currently at capacity due to high demand", None),
        ("Requests per Second (actual/limit): 3/0", None),
    ],
)
def test_a_429_text_states_its_limit_or_none(text: str, expected: StatedLimit | None) -> None:
    assert stated_limit(text) == expected


def test_a_stated_limit_describes_itself_for_the_summary() -> None:
    assert StatedLimit("requests", "second", 5).describe() == "5 requests/s from the API"
    assert StatedLimit("tokens", "minute", 50_000).describe() == "50,000 tokens/min from the API"


# -- the pacer, on a clock of its own ---------------------------------------------------------


def test_the_first_request_goes_alone_until_an_answer_comes() -> None:
    pacer = Pacer(None, None)
    assert pacer.delay(10, 0.0) == 0.0
    pacer.reserve(10, 0.0)
    assert pacer.delay(10, 0.0) == SLOW_START_CAP  # the answer, or a second at most
    assert pacer.delay(10, SLOW_START_CAP) == 0.0
    pacer.answered(10, {}, 0.05)
    assert pacer.delay(10, 0.05) == 0.0  # no headers: nothing holds sending back


def test_remaining_requests_hold_sending_back_and_a_probe_follows_when_nothing_is_out() -> None:
    pacer = Pacer(None, None)
    pacer.reserve(1, 0.0)
    pacer.answered(1, {"x-ratelimit-remaining-requests": "2"}, 0.1)
    for _ in range(2):
        assert pacer.delay(1, 0.1) == 0.0
        pacer.reserve(1, 0.1)
    assert pacer.delay(1, 0.1) is None  # two out, none left: wait for an answer
    pacer.answered(1, {"x-ratelimit-remaining-requests": "0"}, 0.2)
    assert pacer.delay(1, 0.2) is None  # still one out whose answer will tell more
    pacer.answered(1, {"x-ratelimit-remaining-requests": "0"}, 0.3)
    assert pacer.delay(1, 0.3) == pytest.approx(PROBE_INTERVAL)


def test_a_learned_per_second_limit_spaces_requests_after_the_servers_window_has_emptied() -> None:
    pacer = Pacer(None, None)
    for _ in range(5):
        pacer.reserve(1, 0.0)
    for _ in range(5):
        pacer.answered(1, None, 0.1)
    learned = pacer.learn("Requests per Second (actual/limit): 6/5", 0.2)
    assert learned == StatedLimit("requests", "second", 5)
    # The five sent at 0.0 fill the server's second: nothing before it has passed.
    assert pacer.delay(1, 0.2) == pytest.approx(1 + LEARNED_SLACK - 0.2)
    start = 1 + LEARNED_SLACK
    pacer.reserve(1, start)
    assert pacer.delay(1, start) == pytest.approx((1 + LEARNED_SLACK) / 5)
    assert [limit.describe() for limit in pacer.learned] == ["5 requests/s from the API"]


def test_a_looser_stated_limit_does_not_replace_a_tighter_one() -> None:
    pacer = Pacer(rpm=60, tpm=None)  # one a second
    assert pacer.learn("Requests per Second (actual/limit): 9/8", 0.0) is None
    assert pacer.learned == []


# -- the Responses mapping --------------------------------------------------------------------


def test_a_responses_body_maps_chat_params_by_their_responses_names() -> None:
    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    request = ChatRequest(
        model="grok-4.3",
        messages=(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ),
        params={
            "max_tokens": 20,
            "reasoning_effort": "low",
            "response_format": {"type": "json_schema", "json_schema": schema},
            "temperature": 0,
            "store": True,
        },
        api="responses",
    )
    path, body = request_body(request)
    assert path == "/responses"
    assert body == {
        "model": "grok-4.3",
        "input": [{"role": "user", "content": "hi"}],
        "instructions": "Be brief.",
        "max_output_tokens": 20,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", **schema}},
        "temperature": 0,
        "store": True,
    }


def test_a_chat_request_is_sent_as_written() -> None:
    request = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},), params={"a": 1})
    assert request_body(request) == (
        "/chat/completions",
        {"a": 1, "model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )


def test_an_incomplete_response_reads_as_length_and_its_usage_by_responses_rules() -> None:
    data = {
        "model": "grok-4.3",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "reasoning": {"effort": "medium"},
        "output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "content": [{"type": "output_text", "text": "Hel"}]},
        ],
        "usage": {
            "input_tokens": 10,
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 25},
            "total_tokens": 40,
        },
    }
    completion = parse_completion(data, 1.0, "responses", {"x-request-id": "r-1"})
    assert (completion.text, completion.finish_reason) == ("Hel", "length")
    assert (completion.reasoning_effort, completion.request_id) == ("medium", "r-1")
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (10, 5, 25)
    assert usage.output_tokens == 30


def test_a_learned_window_is_not_held_until_slow_answers_return() -> None:
    pacer = Pacer(None, None)
    pacer.reserve(1, 0.0)
    pacer.answered(1, None, 0.05)
    pacer.learn("Requests per Second (actual/limit): 2/5", 0.05)
    use, _ = pacer.reserve(1, 0.1)
    step = (1 + LEARNED_SLACK) / 5
    pacer.answered(1, None, 2.0, use)  # a reasoning model's minute, shortened
    assert pacer.delay(1, 0.1 + step) == pytest.approx(0.0)
