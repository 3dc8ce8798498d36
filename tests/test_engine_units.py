"""Engine pieces on their own: rate windows, error classification, estimates and cost."""

from __future__ import annotations

import asyncio
import bisect
import random
import subprocess
import sys
from typing import Any

import openai
import pytest
from conftest import API_KEY

from pytest_grokeval.data import ChatRequest, Completion, Usage
from pytest_grokeval.engine.budgets import (
    DEFAULT_MAX_TOKENS_ESTIMATE,
    WINDOW_MARGIN,
    SlidingWindow,
    Use,
    estimate_tokens,
    rpm_window,
)
from pytest_grokeval.engine.engine import (
    BACKOFF_CAP,
    Engine,
    EngineSettings,
    default_client,
    wait_event,
)
from pytest_grokeval.engine.errors import FatalAPIError, ItemError, RetryableError, classify
from pytest_grokeval.engine.pricing import PRICES, Price, cost_from_usage, estimate_cost, price_for
from pytest_grokeval.engine.wire import parse_completion
from pytest_grokeval.testing import FakeGrok, Reply

SECOND = 1.0 + WINDOW_MARGIN  # how long a use holds a one-second window

# -- rate windows -------------------------------------------------------------------------------


def test_a_window_admits_up_to_its_limit_then_waits_for_the_oldest_use_to_leave() -> None:
    window = SlidingWindow(2, 1.0)
    assert window.delay(1, 0.0) == 0
    window.reserve(1, 0.0)
    assert window.delay(1, 0.2) == 0
    window.reserve(1, 0.2)
    assert window.delay(1, 0.3) == pytest.approx(SECOND - 0.3)
    assert window.delay(1, SECOND) == 0


def test_settling_a_reservation_below_its_estimate_makes_room_at_once() -> None:
    window = SlidingWindow(100, 1.0)
    use = window.reserve(90, 0.0)
    assert window.delay(50, 0.1) == pytest.approx(SECOND - 0.1)
    window.settle(use, 30, 0.1)
    assert window.delay(50, 0.1) == 0


def test_usage_above_an_estimate_whose_window_has_passed_counts_from_now() -> None:
    window = SlidingWindow(100, 1.0)
    use = window.reserve(50, 0.0)
    window.settle(use, 150, 5.0)
    # The 100 tokens nobody reserved fill the window from the moment they became known.
    assert window.delay(1, 5.5) == pytest.approx(5.0 + SECOND - 5.5)


def test_an_amount_over_the_limit_waits_for_an_empty_window_and_holds_it_for_its_share() -> None:
    window = SlidingWindow(100, 1.0)
    window.reserve(10, 0.0)
    assert window.delay(250, 0.5) == pytest.approx(SECOND - 0.5)
    window.reserve(250, SECOND)
    # 250 tokens are two and a half seconds' worth of a 100-a-second budget.
    assert window.delay(1, SECOND + 1.0) == pytest.approx(2.5 * SECOND - 1.0)


def admit(window: SlidingWindow, lags: list[float], service: float) -> list[float]:
    """When each request reaches the server, if the engine admits them on a simulated clock.

    As the engine does: reserve in flight when delay() is 0, else wait for the delay or the next
    answer, whichever comes first; finish each use when its answer comes. A request reaches the
    server `lag` after its admission (a slow client) and is answered `service` later.
    """
    clock = 0.0
    arrivals: list[float] = []
    answers: list[tuple[float, Use]] = []
    for lag in lags:
        while True:
            answers.sort(key=lambda answer: answer[0])
            while answers and answers[0][0] <= clock:
                window.finish(answers.pop(0)[1], clock)
            wait = window.delay(1, clock)
            if wait <= 0:
                break
            clock = min(clock + wait, answers[0][0] if answers else float("inf"))
        use = window.reserve(1, clock, in_flight=True)
        arrivals.append(clock + lag)
        answers.append((clock + lag + service, use))
    return sorted(arrivals)


def busiest_second(arrivals: list[float]) -> int:
    return max(bisect.bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))


@pytest.mark.parametrize("rpm", [30, 120, 600])
def test_however_slow_the_client_the_server_never_sees_more_than_rpm_over_60_in_a_second(
    rpm: int,
) -> None:
    draw = random.Random(rpm)
    # Up to half a second between admitting a request and the server seeing it.
    lags = [draw.choice([0.0, 0.0, draw.uniform(0, 0.5)]) for _ in range(300)]
    arrivals = admit(rpm_window(rpm), lags, service=0.05)
    assert busiest_second(arrivals) <= max(1, rpm // 60)


def test_without_lag_the_rpm_budget_is_used_at_its_rate() -> None:
    arrivals = admit(rpm_window(120), [0.0] * 41, service=0.05)
    # 2 requests a second, each held for a window after its answer: 20 windows of 1.09 s.
    assert arrivals[-1] == pytest.approx(20 * (SECOND + 0.05))


@pytest.mark.parametrize(
    ("rpm", "limit", "seconds"),
    [(120, 2, 1.0), (1800, 30, 1.0), (90, 1, 60 / 90), (30, 1, 2.0)],
)
def test_rpm_is_enforced_per_second_and_below_60_as_one_request_per_interval(
    rpm: int, limit: int, seconds: float
) -> None:
    window = rpm_window(rpm)
    assert window.limit == limit
    assert window.seconds == pytest.approx(seconds + WINDOW_MARGIN)


# -- classifying API errors, as the SDK raises them from real HTTP answers -------------------------


def answer(server: FakeGrok, reply: Reply) -> Any:
    """The body the engine's client reads for one request, or the SDK error it raised."""
    server.add_fault(reply, times=1)
    settings = EngineSettings(base_url=server.url, api_key=API_KEY)

    async def call() -> Any:
        async with default_client(settings) as client:
            body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}
            return await client.post("/chat/completions", body=body, cast_to=object)

    try:
        return asyncio.run(call())
    except openai.APIStatusError as exc:
        return exc


NO_CREDITS = (
    "Your team abc has either used all available credits or reached its monthly spending limit."
)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(status=400, error="Incorrect API key provided: xa***0e."), FatalAPIError),
        (Reply(status=401, error="No Authorization header"), FatalAPIError),
        (Reply(status=404, error="The model grok-9 does not exist"), FatalAPIError),
        (Reply(status=429, error=NO_CREDITS), FatalAPIError),
        (Reply(status=429, error="The service is temporarily at capacity."), RetryableError),
        (Reply(status=500), RetryableError),
        (Reply(status=503), RetryableError),
        (Reply(status=400, error="maximum prompt length is 131072"), ItemError),
        (Reply(status=422, error="invalid field"), ItemError),
        # xAI's 2026 bodies (shared/research/xai-api-2026.md §1.6, §1.7).
        (Reply(status=400, error="Incorrect API key provided: xa***0e.", code="invalid-argument"),
         FatalAPIError),
        (Reply(status=400, error="Model grok-build-0.1 does not support reasoning_effort",
               code="invalid-argument"), ItemError),
        (Reply(status=404, error="The model grok-9 does not exist or your team abc does not "
               "have access to it.", code="not-found"), FatalAPIError),
        (Reply(status=403, error=NO_CREDITS,
               code="The caller does not have permission to execute the specified operation"),
         FatalAPIError),
        (Reply(status=403, error="Your newly created team doesn't have any credits or licenses "
               "yet."), FatalAPIError),
        (Reply(status=403, error="Content violates usage guidelines. Failed check: SAFETY",
               code="permission-denied"), ItemError),
        (Reply(status=403, error="Your team has no licenses for this model."), FatalAPIError),
        (Reply(status=403, error="Invalid API key"), FatalAPIError),
        (Reply(status=429, error="Free usage quota exceeded. Purchase credits to continue.",
               code="resource-exhausted"), FatalAPIError),
        (Reply(status=429, error="Too many requests for team abc and model grok-4.3. Your "
               "team's rate limit is — Requests per Second (actual/limit): 2/2.",
               code="resource-exhausted"), RetryableError),
        (Reply(status=429, error="The model is currently at capacity due to high demand, "
               "try again later or use a higher service tier for priority processing",
               code="resource-exhausted"), RetryableError),
        (Reply(status=429, error="per-minute request quota exceeded"), RetryableError),
    ],
    ids=lambda value: (
        f"{value.status}-{(value.error or '')[:24]}" if isinstance(value, Reply)
        else value.__name__
    ),
)
def test_errors_are_sorted_into_fatal_retryable_and_failures_of_one_case(
    grok: FakeGrok, reply: Reply, kind: type[Exception]
) -> None:
    classified = classify(answer(grok, reply))
    assert type(classified) is kind
    assert f"HTTP {reply.status}: {reply.error or 'injected'}" in str(classified)


def test_only_a_429_that_is_not_about_money_pauses_everyone(grok: FakeGrok) -> None:
    limited = classify(answer(grok, Reply(status=429, error="slow down")))
    failing = classify(answer(grok, Reply(status=500)))
    assert isinstance(limited, RetryableError) and limited.rate_limited
    assert isinstance(failing, RetryableError) and not failing.rate_limited


@pytest.mark.parametrize(
    ("reply", "seconds"),
    [
        (Reply(status=429, retry_after=2), 2.0),
        (Reply(status=429, retry_after_ms=250), 0.25),
        (Reply(status=429, retry_after=2, retry_after_ms=250), 0.25),
        (Reply(status=503, retry_after=1.5), 1.5),
        (Reply(status=429, retry_after=500), None),  # over two minutes: backoff instead
        (Reply(status=429, headers={"retry-after": "soon"}), None),
        (Reply(status=429), None),
    ],
)
def test_retry_after_headers_are_read_in_seconds_and_milliseconds(
    grok: FakeGrok, reply: Reply, seconds: float | None
) -> None:
    classified = classify(answer(grok, reply))
    assert isinstance(classified, RetryableError)
    assert classified.retry_after == seconds


def test_a_fatal_error_says_what_to_do_about_it(grok: FakeGrok) -> None:
    classified = classify(answer(grok, Reply(status=429, error=NO_CREDITS)))
    assert str(classified) == (
        f"HTTP 429: {NO_CREDITS} (add credits or raise the spending limit at console.x.ai; "
        "the prefetch stopped)"
    )


def test_the_wait_before_a_retry_never_exceeds_the_cap_however_many_retries_came_before() -> None:
    engine = Engine(EngineSettings(base_url="http://127.0.0.1:9", api_key=API_KEY))
    waits = [engine._backoff(retry, None) for retry in range(1, 41)]
    assert max(waits) <= BACKOFF_CAP
    # Doubling from 0.5 s passes the cap at the 7th retry, and jitter keeps at least half.
    assert min(waits[8:]) >= BACKOFF_CAP / 2


# Run in a fresh interpreter: the collector's state is the process's. Python 3.12 starts with
# a few hundred objects frozen; the engine then leaves the freeze alone and raises only the
# threshold.
_COLLECTOR_SCRIPT = """
import asyncio, gc, sys
from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.engine import Engine, EngineSettings
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.engine.heap import YOUNG_THRESHOLD

url, key = sys.argv[1:3]
before = (gc.get_freeze_count(), gc.get_threshold())
seen = []

def run(*prompts):
    engine = Engine(
        EngineSettings(base_url=url, api_key=key, retries=0),
        on_result=lambda r, o: seen.append((gc.get_freeze_count(), gc.get_threshold()[0])),
    )
    requests = [
        ChatRequest(model="grok-4.3", messages=({"role": "user", "content": p},)) for p in prompts
    ]
    asyncio.run(engine.run(requests))

try:
    run("refused")  # the way out of a stopped run restores it too
except FatalAPIError:
    pass
else:
    raise AssertionError("the 401 did not stop the run")
assert (gc.get_freeze_count(), gc.get_threshold()) == before, "not restored after the 401"
run("one", "two")
frozen_before = before[0]
assert len(seen) == 2, seen
for frozen, young in seen:
    assert young == YOUNG_THRESHOLD, seen
    assert frozen > 0 if frozen_before == 0 else frozen == frozen_before, seen
assert (gc.get_freeze_count(), gc.get_threshold()) == before, "not restored"
print("OK")
"""


def test_the_collector_skips_the_sessions_objects_while_the_engine_runs_and_only_then(
    grok: FakeGrok,
) -> None:
    grok.add_fault(Reply(status=401, error="Incorrect API key provided"), times=1)
    result = subprocess.run(
        [sys.executable, "-c", _COLLECTOR_SCRIPT, grok.url, API_KEY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "OK", result.stderr


# -- estimates and cost -------------------------------------------------------------------------


def test_a_price_comes_from_grok_prices_then_the_table_and_an_unknown_model_has_none() -> None:
    mine = Price(9.0, 1.0, 9.0)
    assert price_for("grok-4.3", {"grok-4.3": mine}) == mine
    assert price_for("grok-4.5-latest") == PRICES["grok-4.5"]
    assert price_for("grok-3-mini") == PRICES["grok-4.3"]  # retired: redirected and billed so
    assert price_for("grok-9") is None
    assert estimate_cost("grok-9", 400, 100) is None
    assert cost_from_usage("grok-9", Usage(100, 10, 110), None) is None
    assert cost_from_usage("grok-9", Usage(100, 10, 110), None, {"grok-9": mine}) == (
        pytest.approx((100 * 9.0 + 10 * 9.0) / 1e6)
    )
    assert cost_from_usage("grok-4.3", None, None) is None


def test_a_token_reservation_is_prompt_characters_over_four_plus_the_output_cap() -> None:
    messages = ({"role": "system", "content": "s" * 20}, {"role": "user", "content": "u" * 20})
    assert estimate_tokens(ChatRequest("grok-4.3", messages, {"max_tokens": 100})) == 110
    assert estimate_tokens(ChatRequest("grok-4.3", messages)) == 10 + DEFAULT_MAX_TOKENS_ESTIMATE


def completion(server: FakeGrok, usage: dict[str, Any], model: str = "grok-4.3") -> Completion:
    return parse_completion(answer(server, Reply(usage=usage, model=model)), 12.5)


def test_the_cost_is_the_apis_own_figure_when_it_sends_one(grok: FakeGrok) -> None:
    assert completion(grok, {"cost_in_usd_ticks": 123_450_000}).cost_usd == pytest.approx(0.012345)


def test_without_the_apis_figure_the_cost_comes_from_the_price_table(grok: FakeGrok) -> None:
    # A million tokens each way: grok-4.3 lists $1.25 in and $2.50 out per million.
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "cost_in_usd_ticks": None}
    assert completion(grok, usage).cost_usd == pytest.approx(3.75)


def test_reasoning_tokens_outside_completion_tokens_are_billed_as_output(grok: FakeGrok) -> None:
    # xAI counts reasoning in total_tokens but not in completion_tokens.
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 0,
        "total_tokens": 2_000_000,
        "cost_in_usd_ticks": None,
    }
    assert completion(grok, usage).cost_usd == pytest.approx(3.75)


def test_a_completion_keeps_the_text_model_usage_and_latency(grok: FakeGrok) -> None:
    result = completion(grok, {"prompt_tokens": 7, "completion_tokens": 3}, model="grok-4.3-0514")
    assert (result.text, result.finish_reason) == ("You said: hi", "stop")
    assert result.model == "grok-4.3-0514"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.output_tokens) == (7, 3)
    assert result.latency_ms == 12.5


@pytest.mark.parametrize(
    "stored",
    [None, "12", {"prompt_tokens": None, "completion_tokens": 3}, {"prompt_tokens": -1,
     "completion_tokens": 3}, {"completion_tokens": 3}],
)
def test_usage_read_back_from_a_recording_is_unknown_unless_its_counts_are(stored: Any) -> None:
    assert Usage.from_json(stored) is None
    assert Usage.from_json({"prompt_tokens": 2, "completion_tokens": 3}) == Usage(2, 3, 0)


def test_the_effort_recorded_is_the_one_sent_else_the_one_reported_else_the_models_default(
    grok: FakeGrok,
) -> None:
    reported = {**answer(grok, Reply()), "reasoning": {"effort": "high"}}
    silent = answer(grok, Reply())

    def effort(body: Any, sent: str | None) -> str | None:
        parsed = parse_completion(body, 1.0, sent_effort=sent, default_effort="medium")
        return parsed.reasoning_effort

    assert effort(reported, "low") == "low"
    assert effort(reported, None) == "high"
    assert effort(silent, None) == "medium"
    assert parse_completion(silent, 1.0).reasoning_effort is None


def test_a_cancellation_that_lands_as_the_wait_ends_is_not_swallowed() -> None:
    # asyncio.wait_for on Python 3.11 returns here instead of raising: Ctrl-C or SIGTERM during
    # a paced wait would be lost, and the task would go on to send.
    async def scenario() -> str:
        event = asyncio.Event()
        waiter = asyncio.ensure_future(wait_event(event, 10))
        await asyncio.sleep(0)  # one loop pass: the waiter is now waiting
        event.set()
        waiter.cancel()
        try:
            await waiter
        except asyncio.CancelledError:
            return "cancelled"
        return "swallowed"

    assert asyncio.run(scenario()) == "cancelled"
    assert asyncio.run(wait_event(asyncio.Event(), 0.001)) is False
