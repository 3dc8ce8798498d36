"""The async request engine: one run's concurrency limit, retries, pauses, budgets and stats."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .data import ChatRequest, Completion, FetchError, Outcome, Usage
from .pricing import cost_from_usage, estimate_cost

if TYPE_CHECKING:
    # Imported when the first request is sent: a replay-only run never pays for the SDK.
    import openai

DEFAULT_MAX_TOKENS_ESTIMATE = 1024
# A request reaches the server before its answer reaches us, so a window that counts it from
# the answer (SlidingWindow.finish) is never shorter for the server than for us; this slack is
# kept on top for the server's own clock and window edges, which are not ours.
WINDOW_MARGIN = 0.04
BACKOFF_CAP = 30.0
# The SDK's own cap: a longer retry-after means "not soon", and backoff is used instead.
RETRY_AFTER_CAP = 120.0
# Settled token counts are floats; a sum that is over the limit by less than this is not.
_ROUNDING = 1e-9


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

    total: int = 0  # distinct requests to fetch
    done: int = 0  # of those, answered or given up on
    in_flight: int = 0
    sent: int = 0  # distinct requests that went out at least once
    retried: int = 0  # attempts after the first
    failed: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    paused_until: float = 0.0
    deduplicated: int = 0  # fetches answered by a request already sent or sending


class FatalAPIError(Exception):
    """An error no retry can fix (bad key, no credits, unknown model): the whole run stops."""

    def __init__(self, error: FetchError, advice: str) -> None:
        super().__init__(f"{error.message} ({advice}; the prefetch stopped)")
        self.error = error


class RetryableError(Exception):
    """Worth sending again: after `retry_after` seconds if the API said, else after backoff."""

    def __init__(
        self, error: FetchError, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class ItemError(Exception):
    """Fails the items of one request, and only those."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


# xAI answers both "slow down" and "out of money" with 429; only the message tells them apart.
_NO_CREDITS = re.compile(r"credits|spending limit|billing|quota", re.IGNORECASE)
# xAI answers a bad key with 400 "Incorrect API key provided", not 401.
_BAD_KEY = re.compile(r"api key|unauthori[sz]ed|authentication", re.IGNORECASE)


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


def classify(exc: openai.APIStatusError) -> FatalAPIError | RetryableError | ItemError:
    """Map an API status error to fatal (stop the run), retryable, or a failure of its items."""
    status = exc.status_code
    message = api_message(exc)
    error = FetchError(f"HTTP {status}: {message}", status, "api")
    if status in (401, 403) or (status == 400 and _BAD_KEY.search(message)):
        return FatalAPIError(error, "the API refused the key; check it")
    # Every other request of the run would get the same answer: a wrong model or base URL.
    if status == 404:
        return FatalAPIError(error, "check the model name and --grok-base-url")
    if status == 429 and _NO_CREDITS.search(message):
        return FatalAPIError(error, "add credits or raise the spending limit at console.x.ai")
    if status == 429:
        return RetryableError(error, _retry_after(exc), rate_limited=True)
    if status >= 500 or status in (408, 409):
        return RetryableError(error, _retry_after(exc))
    return ItemError(error)


@dataclass
class Use:
    """One reservation in a window; its amount is corrected once the real figure is known."""

    stamp: float
    amount: float
    in_flight: bool = False


class SlidingWindow:
    """At most `limit` units in any `seconds`: xAI enforces its budgets per second."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds + WINDOW_MARGIN
        self._uses: list[Use] = []

    def _end(self, use: Use, now: float) -> float:
        # A use in flight may not have reached the server yet: it counts as if sent now.
        stamp = max(use.stamp, now) if use.in_flight else use.stamp
        # An amount over the whole limit holds the window for its share of the time: it can go
        # at all, and the average rate still holds.
        return stamp + self.seconds * max(1.0, use.amount / self.limit)

    def delay(self, amount: float, now: float) -> float:
        """Seconds from `now` until `amount` fits; 0 when it fits now.

        A use still in flight is always in the way: the wait then is a whole window, and ends
        early when its `finish()` makes room (the engine waits on that signal too).
        """
        self._uses = [use for use in self._uses if self._end(use, now) > now]
        # An amount over the limit waits for an empty window.
        excess = sum(use.amount for use in self._uses) + min(amount, self.limit) - self.limit
        wait = 0.0
        for use in sorted(self._uses, key=lambda use: self._end(use, now)):
            if excess <= _ROUNDING:
                break
            excess -= use.amount
            wait = self._end(use, now) - now
        return wait

    def reserve(self, amount: float, now: float, *, in_flight: bool = False) -> Use:
        """Count `amount` from `now`, or until finish() when `in_flight`; only when it fits."""
        use = Use(now, amount, in_flight)
        self._uses.append(use)
        return use

    def finish(self, use: Use, now: float) -> None:
        """The request of an in-flight use was answered or failed at `now`: count it from then.

        The server saw the request at some moment between its send and its answer, and only the
        answer tells us it has. Stamping at the later of the two means that the server can never
        see more than the limit in a window, however long the client took to put the request
        on the wire (a loaded machine, a busy event loop); a stamp at send time alone fails as
        soon as that lag varies by more than WINDOW_MARGIN. The price: a use holds the window
        for its latency too, so at most `limit` requests are in flight at once.
        """
        use.stamp = max(use.stamp, now)
        use.in_flight = False

    def settle(self, use: Use, actual: float, now: float) -> None:
        """Replace a reservation's estimate with what was really used."""
        if self._end(use, now) > now:
            use.amount = actual
        elif actual > use.amount:
            # The window of the estimate has passed: the shortfall counts from now.
            self._uses.append(Use(now, actual - use.amount))


def rpm_window(rpm: int) -> SlidingWindow:
    """rpm/60 requests a second; below 60 rpm, one request per 60/rpm seconds."""
    per_window = max(1, rpm // 60)
    return SlidingWindow(per_window, per_window * 60 / rpm)


def _prompt_chars(request: ChatRequest) -> int:
    return sum(len(str(m.get("content", ""))) for m in request.messages)


def _max_tokens(request: ChatRequest) -> int:
    value = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    return int(value or DEFAULT_MAX_TOKENS_ESTIMATE)


def estimate_tokens(request: ChatRequest) -> int:
    """Prompt characters over four plus the output cap: what a reservation holds."""
    return _prompt_chars(request) // 4 + _max_tokens(request)


def estimate_request_cost(request: ChatRequest) -> float:
    """An upper bound of what one request costs, from its size and output cap."""
    return estimate_cost(request.model, _prompt_chars(request), _max_tokens(request))


def parse_completion(data: Any, latency_ms: float) -> Completion:
    """Read a chat completion's JSON body; raise ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"the response is not a JSON object: {str(data)[:200]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    text = (message.get("content") if isinstance(message, dict) else None) or ""
    usage_data = data.get("usage")
    raw: dict[str, Any] = usage_data if isinstance(usage_data, dict) else {}
    usage = Usage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        reasoning_tokens=_int(_get(raw, "completion_tokens_details", "reasoning_tokens")),
        cached_tokens=_int(_get(raw, "prompt_tokens_details", "cached_tokens")),
    )
    # xAI's exact billed cost; absent elsewhere, and then the price table estimates it.
    ticks = raw.get("cost_in_usd_ticks")
    model = str(data.get("model") or "")
    return Completion(
        text=str(text),
        finish_reason=choice.get("finish_reason"),
        model=model,
        usage=usage,
        latency_ms=latency_ms,
        cost_usd=cost_from_usage(model, usage, ticks if isinstance(ticks, int) else None),
    )


def _get(data: dict[str, Any], outer: str, inner: str) -> Any:
    nested = data.get(outer)
    return nested.get(inner) if isinstance(nested, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


ResultCallback = Callable[[ChatRequest, Outcome], None]
ProgressCallback = Callable[[EngineStats], None]


class Engine:
    """Sends requests for one run: entered once, fed with fetch() calls, then read for stats."""

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
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore = asyncio.Semaphore(settings.max_concurrent)
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._resume_at = 0.0
        self._fatal: FatalAPIError | None = None
        self._rpm = rpm_window(settings.rpm) if settings.rpm else None
        self._tpm = SlidingWindow(settings.tpm / 60, 1.0) if settings.tpm else None
        self._settled = asyncio.Event()

    async def __aenter__(self) -> Engine:
        return self

    def expect(self, count: int) -> None:
        """How many requests the run plans to send, for the progress line's total."""
        self.stats.total = count

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A fatal error or Ctrl-C: stop the rest, and let them unwind before the client closes.
        # Every response already received has gone to on_result.
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Early stopping sends fewer than planned, judges more: the total is what was sent.
        self.stats.total = len(tasks)
        if self._client is not None:
            await self._client.close()

    async def fetch(self, request: ChatRequest) -> Outcome:
        """The outcome of one request, sent once however many callers ask for it."""
        task = self._tasks.get(request.fingerprint)
        if task is None:
            if self._client is None:
                self._client = self._client_factory(self.settings)
            task = asyncio.ensure_future(self._fetch(self._client, request))
            self._tasks[request.fingerprint] = task
            self.stats.total = max(self.stats.total, len(self._tasks))
            self._emit()
        else:
            self.stats.deduplicated += 1
        # Shielded: one caller giving up must not cancel the request for the others.
        return await asyncio.shield(task)

    async def run(self, requests: Sequence[ChatRequest]) -> dict[str, Outcome]:
        """Fetch every request once; raise FatalAPIError when the run cannot go on."""
        async with self:
            outcomes = await asyncio.gather(*(self.fetch(r) for r in requests))
        return {r.fingerprint: o for r, o in zip(requests, outcomes, strict=True)}

    def _emit(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _finish(self, request: ChatRequest, outcome: Outcome) -> Outcome:
        self.stats.done += 1
        if isinstance(outcome, FetchError):
            self.stats.failed += 1
        else:
            self.stats.prompt_tokens += outcome.usage.prompt_tokens
            self.stats.output_tokens += outcome.usage.output_tokens
            self.stats.cost_usd += outcome.cost_usd or 0.0
            self.stats.latencies_ms.append(outcome.latency_ms)
        if self._on_result is not None:
            self._on_result(request, outcome)
        self._emit()
        return outcome

    async def _fetch(self, client: openai.AsyncOpenAI, request: ChatRequest) -> Outcome:
        """Send one request until it is answered, fails for good, or its retries run out."""
        retries = self.settings.retries
        for attempt in range(retries + 1):
            try:
                async with self._semaphore:
                    uses = await self._admit(request)
                    if attempt == 0:
                        self.stats.sent += 1
                    completion = await self._send(client, request, *uses)
            except ItemError as exc:
                return self._finish(request, exc.error)
            except RetryableError as exc:
                if attempt == retries:
                    gave_up = f"gave up after {retries} {'retry' if retries == 1 else 'retries'}"
                    error = exc.error
                    message = f"{error.message} ({gave_up})"
                    return self._finish(request, FetchError(message, error.status, error.kind))
                self.stats.retried += 1
                delay = self._backoff(attempt + 1, exc.retry_after)
                if exc.rate_limited:
                    # Not a sleep: _admit holds this request back with every other one.
                    self._pause(delay)
                self._emit()
                if not exc.rate_limited:
                    await asyncio.sleep(delay)
                continue
            return self._finish(request, completion)
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(BACKOFF_CAP, self.settings.backoff_base * 2.0 ** (retry - 1))
        return ceiling * (0.5 + random.random() / 2)

    def _pause(self, delay: float) -> None:
        """A 429 holds back every new request, not only the one that got it."""
        self._resume_at = max(self._resume_at, time.monotonic() + delay)
        self.stats.paused_until = self._resume_at

    async def _admit(self, request: ChatRequest) -> tuple[Use | None, Use | None]:
        """Wait out pauses and rate budgets; return the request and token reservations.

        Each pass checks everything and reserves only when nothing is in the way, with no await
        in between, so the stamps in the windows are the moments requests really go out.
        """
        tokens = estimate_tokens(request)
        while True:
            if self._fatal is not None:
                raise self._fatal
            spent, max_cost = self.stats.cost_usd, self.settings.max_cost
            if max_cost is not None and spent >= max_cost:
                message = f"the run has already spent ${spent:.4f} of --grok-max-cost ${max_cost:g}"
                raise ItemError(FetchError(message, kind="budget"))
            now = time.monotonic()
            wait = max(
                self._resume_at - now,
                self._rpm.delay(1, now) if self._rpm else 0.0,
                self._tpm.delay(tokens, now) if self._tpm else 0.0,
            )
            if wait <= 0:
                break
            # An answer makes room early in both windows, so its signal also ends the wait.
            settled = self._settled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), wait)
        return (
            self._rpm.reserve(1, now, in_flight=True) if self._rpm else None,
            self._tpm.reserve(tokens, now, in_flight=True) if self._tpm else None,
        )

    async def _send(
        self, client: openai.AsyncOpenAI, request: ChatRequest, use: Use | None, tokens: Use | None
    ) -> Completion:
        """One HTTP attempt, its errors sorted into fatal, retryable and item failures."""
        import openai

        self.stats.in_flight += 1
        self._emit()
        started = time.perf_counter()
        try:
            # The SDK for transport, auth, timeouts and its error classes, but the JSON body as
            # it is: building its typed ChatCompletion costs more CPU than the HTTP exchange.
            data = await client.post(
                "/chat/completions", body=request.create_kwargs(), cast_to=object
            )
            completion = parse_completion(data, (time.perf_counter() - started) * 1000)
        except openai.APITimeoutError:
            message = f"timed out after {self.settings.timeout:g} s (--grok-timeout)"
            raise RetryableError(FetchError(message, kind="timeout")) from None
        except openai.APIConnectionError as exc:
            # The SDK's own message is just "Connection error."; the cause says what happened.
            message = f"connection failed: {exc.__cause__ or exc}"
            raise RetryableError(FetchError(message, kind="connection")) from None
        except openai.APIStatusError as exc:
            classified = classify(exc)
            if isinstance(classified, FatalAPIError):
                self._fatal = classified
            raise classified from None
        except (ValueError, TypeError, AttributeError) as exc:
            # The SDK lets a 200 with an unparsable body through as a JSONDecodeError.
            message = f"malformed response: {exc}"
            raise RetryableError(FetchError(message, kind="malformed")) from None
        finally:
            self.stats.in_flight -= 1
            # Answered or failed, the request has reached the server if it ever will.
            self._finish_uses(use, tokens)
        if tokens is not None and self._tpm is not None:
            self._tpm.settle(tokens, completion.usage.total_tokens, time.monotonic())
        return completion

    def _finish_uses(self, use: Use | None, tokens: Use | None) -> None:
        now = time.monotonic()
        if use is not None and self._rpm is not None:
            self._rpm.finish(use, now)
        if tokens is not None and self._tpm is not None:
            self._tpm.finish(tokens, now)
        self._settled.set()
        self._settled = asyncio.Event()


def default_client(settings: EngineSettings) -> openai.AsyncOpenAI:
    """The SDK client: its own retries off, because the engine owns the only retry loop."""
    import openai

    # The SDK's aiohttp transport (the openai[aiohttp] extra): bench/prefetch.py measured its
    # default httpx2 one 1.3x slower than a plain gather at 16-64 in flight, aiohttp faster.
    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=settings.timeout),
    )
