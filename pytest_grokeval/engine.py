"""The async request engine: one run's concurrency limit, retries, pauses, budgets and stats."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from .data import ChatRequest, Completion, FetchError, Outcome, Usage
from .pricing import cost_from_usage, estimate_cost

DEFAULT_MAX_TOKENS_ESTIMATE = 1024
# Slack added to each rate window: the server sees a request a little after we stamp it.
WINDOW_MARGIN = 0.03
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0


@dataclass(frozen=True)
class EngineSettings:
    base_url: str
    api_key: str
    max_concurrent: int = 4
    timeout: float = 120.0
    retries: int = 4
    rpm: int | None = None
    tpm: int | None = None
    max_cost: float | None = None
    backoff_base: float = 0.5


@dataclass
class EngineStats:
    """Live counters, read by the progress line and the summary."""

    total: int = 0
    done: int = 0
    in_flight: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    paused_until: float = 0.0


class FatalAPIError(Exception):
    """An error no retry can fix (bad key, no credits, unknown model): the whole run stops."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


class _Retryable(Exception):
    def __init__(self, error: FetchError, retry_after: float | None, rate_limited: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.rate_limited = rate_limited


_FATAL_429 = re.compile(r"credits|spending limit|billing|quota", re.IGNORECASE)
_BAD_KEY = re.compile(r"api key|unauthori[sz]ed|authentication", re.IGNORECASE)
_UNKNOWN_MODEL = re.compile(r"model", re.IGNORECASE)


def api_message(exc: openai.APIStatusError) -> str:
    """The human message of an API error, from xAI's flat body or OpenAI's nested one."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    if isinstance(body, str) and body:
        return body
    return exc.message


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds <= RETRY_AFTER_CAP:
            return seconds
    return None


def classify(exc: openai.APIStatusError) -> Exception:
    """Map an API status error to fatal, retryable, or a plain failure of its items."""
    status = exc.status_code
    message = api_message(exc)
    error = FetchError(message=f"HTTP {status}: {message}", status=status, kind="api")
    if status in (401, 403) or (status == 400 and _BAD_KEY.search(message)):
        return FatalAPIError(FetchError(f"HTTP {status}: {message}", status, "fatal"))
    if status == 404 and _UNKNOWN_MODEL.search(message):
        return FatalAPIError(FetchError(f"HTTP {status}: {message}", status, "fatal"))
    if status == 429 and _FATAL_429.search(message):
        return FatalAPIError(FetchError(f"HTTP {status}: {message}", status, "fatal"))
    if status == 429:
        return _Retryable(error, _retry_after(exc), rate_limited=True)
    if status >= 500 or status in (408, 409):
        return _Retryable(error, _retry_after(exc), rate_limited=False)
    return error_exception(error)


class _ItemError(Exception):
    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


def error_exception(error: FetchError) -> Exception:
    return _ItemError(error)


class SlidingWindow:
    """At most `limit` units in any window of `seconds`: xAI enforces budgets per second."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds + WINDOW_MARGIN
        self._events: deque[tuple[float, float]] = deque()
        self._used = 0.0
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.seconds:
            self._used -= self._events.popleft()[1]

    async def acquire(self, amount: float) -> list[float]:
        """Wait until `amount` fits; returns a handle to settle the real amount later."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._expire(now)
                # A single request larger than the whole budget may still go alone.
                if self._used + amount <= self.limit or not self._events:
                    entry = [now, amount]
                    self._events.append((now, amount))
                    self._used += amount
                    return entry
                await asyncio.sleep(self._events[0][0] + self.seconds - now)

    def settle(self, handle: list[float], actual: float) -> None:
        """Replace a reservation's estimate with what was really used."""
        for index, (stamp, amount) in enumerate(self._events):
            if stamp == handle[0] and amount == handle[1]:
                self._events[index] = (stamp, actual)
                self._used += actual - amount
                return


def rpm_window(rpm: int) -> SlidingWindow:
    """rpm/60 requests a second; below 60 rpm, one request per 60/rpm seconds."""
    per_window = max(1, rpm // 60)
    return SlidingWindow(per_window, per_window * 60 / rpm)


def estimate_tokens(request: ChatRequest) -> int:
    """Prompt characters over four plus the output cap: what a reservation holds."""
    chars = sum(len(str(m.get("content", ""))) for m in request.messages)
    max_tokens = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    return chars // 4 + int(max_tokens or DEFAULT_MAX_TOKENS_ESTIMATE)


def estimate_request_cost(request: ChatRequest) -> float:
    chars = sum(len(str(m.get("content", ""))) for m in request.messages)
    max_tokens = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    return estimate_cost(request.model, chars, int(max_tokens or DEFAULT_MAX_TOKENS_ESTIMATE))


def parse_completion(response: Any, latency_ms: float) -> Completion:
    """Turn the SDK's ChatCompletion into our Completion; raise ValueError when malformed."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise ValueError("the response has no choices")
    choice = choices[0]
    text = choice.message.content if choice.message is not None else None
    if text is None:
        text = ""
    raw_usage = response.usage
    usage = Usage()
    ticks: int | None = None
    if raw_usage is not None:
        details = raw_usage.completion_tokens_details
        prompt_details = raw_usage.prompt_tokens_details
        usage = Usage(
            prompt_tokens=raw_usage.prompt_tokens or 0,
            completion_tokens=raw_usage.completion_tokens or 0,
            total_tokens=raw_usage.total_tokens or 0,
            reasoning_tokens=(details.reasoning_tokens or 0) if details else 0,
            cached_tokens=(prompt_details.cached_tokens or 0) if prompt_details else 0,
        )
        extra = raw_usage.model_extra or {}
        if isinstance(extra.get("cost_in_usd_ticks"), int):
            ticks = extra["cost_in_usd_ticks"]
    model = str(response.model or "")
    return Completion(
        text=str(text),
        finish_reason=choice.finish_reason,
        model=model,
        usage=usage,
        latency_ms=latency_ms,
        cost_usd=cost_from_usage(model, usage, ticks),
    )


ResultCallback = Callable[[ChatRequest, Outcome], None]
ProgressCallback = Callable[[EngineStats], None]


class Engine:
    """Sends requests for one run: created, run once, then read for its stats."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        on_result: ResultCallback | None = None,
        on_progress: ProgressCallback | None = None,
        client_factory: Callable[[EngineSettings], openai.AsyncOpenAI] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = EngineStats()
        self._on_result = on_result
        self._on_progress = on_progress
        self._client_factory = client_factory or default_client
        self._resume_at = 0.0
        self._pause_streak = 0
        self._fatal: FatalAPIError | None = None
        self._budget_spent = False
        self._rpm = rpm_window(settings.rpm) if settings.rpm else None
        self._tpm = SlidingWindow(settings.tpm / 60, 1.0) if settings.tpm else None

    async def run(self, requests: Sequence[ChatRequest]) -> dict[str, Outcome]:
        """Fetch every request once; raise FatalAPIError when the run cannot go on."""
        unique = list({r.fingerprint: r for r in requests}.values())
        self.stats = EngineStats(total=len(unique))
        results: dict[str, Outcome] = {}
        if not unique:
            return results
        semaphore = asyncio.Semaphore(self.settings.max_concurrent)
        async with self._client_factory(self.settings) as client:
            tasks = [
                asyncio.ensure_future(self._fetch(client, semaphore, request, results))
                for request in unique
            ]
            try:
                await asyncio.gather(*tasks)
            except FatalAPIError:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            finally:
                for task in tasks:
                    task.cancel()
        return results

    def _emit(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _finish(self, request: ChatRequest, outcome: Outcome, results: dict[str, Outcome]) -> None:
        results[request.fingerprint] = outcome
        self.stats.done += 1
        if isinstance(outcome, FetchError):
            self.stats.failed += 1
        else:
            self.stats.prompt_tokens += outcome.usage.prompt_tokens
            self.stats.output_tokens += outcome.usage.output_tokens
            self.stats.cost_usd += outcome.cost_usd or 0.0
            self.stats.latencies_ms.append(outcome.latency_ms)
            max_cost = self.settings.max_cost
            if max_cost is not None and self.stats.cost_usd >= max_cost:
                self._budget_spent = True
        if self._on_result is not None:
            self._on_result(request, outcome)
        self._emit()

    async def _fetch(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        request: ChatRequest,
        results: dict[str, Outcome],
    ) -> None:
        attempt = 0
        while True:
            await self._wait_for_pause()
            if self._budget_spent:
                budget = self.settings.max_cost
                message = f"not sent: the run reached --grok-max-cost ${budget:g}"
                self._finish(request, FetchError(message, kind="budget"), results)
                return
            try:
                completion = await self._attempt(client, semaphore, request)
            except _Retryable as exc:
                if attempt >= self.settings.retries:
                    retries = self.settings.retries
                    error = FetchError(
                        f"{exc.error.message} (gave up after {retries} "
                        f"{'retry' if retries == 1 else 'retries'})",
                        exc.error.status,
                        exc.error.kind,
                    )
                    self._finish(request, error, results)
                    return
                attempt += 1
                self.stats.retried += 1
                delay = self._backoff(attempt, exc.retry_after)
                if exc.rate_limited:
                    self._pause(delay)
                    self._emit()
                else:
                    self._emit()
                    await asyncio.sleep(delay)
                continue
            except _ItemError as exc:
                self._finish(request, exc.error, results)
                return
            self._pause_streak = 0
            self._finish(request, completion, results)
            return

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(BACKOFF_CAP, self.settings.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)

    def _pause(self, delay: float) -> None:
        """A 429 holds back every new request, not only the one that got it."""
        now = time.monotonic()
        self._resume_at = max(self._resume_at, now + delay)
        self.stats.paused_until = self._resume_at

    async def _wait_for_pause(self) -> None:
        while (remaining := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(remaining)

    async def _attempt(
        self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, request: ChatRequest
    ) -> Completion:
        async with semaphore:
            # A pause may have begun while this request queued for a slot.
            await self._wait_for_pause()
            if self._rpm is not None:
                await self._rpm.acquire(1)
            reservation = None
            if self._tpm is not None:
                reservation = await self._tpm.acquire(estimate_tokens(request))
            self.stats.in_flight += 1
            self.stats.sent += 1
            self._emit()
            started = time.perf_counter()
            try:
                response = await client.chat.completions.create(**request.create_kwargs())
                latency_ms = (time.perf_counter() - started) * 1000
                completion = parse_completion(response, latency_ms)
            except openai.APITimeoutError:
                error = FetchError(
                    f"timed out after {self.settings.timeout:g} s (--grok-timeout)",
                    kind="timeout",
                )
                raise _Retryable(error, None, rate_limited=False) from None
            except openai.APIConnectionError as exc:
                error = FetchError(f"connection failed: {exc}", kind="connection")
                raise _Retryable(error, None, rate_limited=False) from None
            except openai.APIStatusError as exc:
                classified = classify(exc)
                if isinstance(classified, FatalAPIError):
                    self._fatal = classified
                raise classified from None
            except (ValueError, TypeError, AttributeError) as exc:
                # The SDK lets a 200 with an unparsable body through as a JSONDecodeError.
                error = FetchError(f"malformed response: {exc}", kind="malformed")
                raise _Retryable(error, None, rate_limited=False) from None
            finally:
                self.stats.in_flight -= 1
            if reservation is not None and self._tpm is not None:
                self._tpm.settle(reservation, completion.usage.total_tokens)
            return completion


def default_client(settings: EngineSettings) -> openai.AsyncOpenAI:
    """The SDK client: its own retries off, because the engine owns the only retry loop."""
    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
    )
