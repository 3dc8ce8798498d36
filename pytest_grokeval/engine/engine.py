"""The async request engine: one run's concurrency limit, retries, pauses and stats."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from pytest_grokeval.data import ChatRequest, Completion, FetchError, Outcome
from pytest_grokeval.engine.accounting import Ledger, Spending
from pytest_grokeval.engine.budgets import Pacer, Use, estimate_tokens
from pytest_grokeval.engine.errors import (
    FatalAPIError,
    ItemError,
    RetryableError,
    api_message,
    classify,
    transport_error,
)
from pytest_grokeval.engine.heap import FrozenHeap
from pytest_grokeval.engine.pricing import Price
from pytest_grokeval.engine.wire import parse_completion, request_body, sent_effort

if TYPE_CHECKING:
    # Imported when the first request is sent: a replay-only run never pays for the SDK.
    import openai

BACKOFF_CAP = 30.0
# An unreachable host fails in seconds, whatever the attempt timeout allows.
CONNECT_TIMEOUT = 10.0
# A timed-out attempt was probably processed, and billed: retry it once, not --grok-retries times.
TIMEOUT_RETRIES = 1


@dataclass(frozen=True)
class EngineSettings:
    """How the engine sends: endpoint, key, concurrency, timeout (seconds), retries, rpm/tpm
    limits, max cost (US dollars), backoff base (seconds) and extra prices. The key is left
    out of the repr: hook implementations and tracebacks with locals print it."""

    base_url: str
    api_key: str = field(repr=False)
    max_concurrent: int = 4
    timeout: float = 900.0  # seconds for one whole attempt, connect to last byte
    retries: int = 4
    rpm: int | None = None
    tpm: int | None = None
    max_cost: float | None = None
    backoff_base: float = 0.5
    prices: Mapping[str, Price] | None = None  # ini grok_prices, before the built-in table


@dataclass
class EngineStats(Spending):
    """Live counters, read by the progress line and the summary."""

    total: int = 0  # distinct requests to fetch
    done: int = 0  # of those, answered or given up on
    in_flight: int = 0
    sent: int = 0  # distinct requests that went out at least once
    retried: int = 0  # attempts after the first
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    paused_until: float = 0.0
    deduplicated: int = 0  # fetches answered by a request already sent or sending
    learned: list[str] = field(default_factory=list)  # limits the API stated, described


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
        self._learned_now = False
        # The model catalog's default effort per model name, recorded when a request sets none.
        self.default_efforts: Mapping[str, str] = {}
        self._pacer = Pacer(settings.rpm, settings.tpm)
        self._settled = asyncio.Event()
        self._ledger = Ledger(self.stats, settings.max_cost, settings.prices)
        self._heap = FrozenHeap()

    async def __aenter__(self) -> Engine:
        self._heap.enter()
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
        self._heap.exit()
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
            task = asyncio.ensure_future(self._fetch(self._client_now(), request))
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

    async def get_json(self, path: str) -> object:
        """GET a JSON document with the run's client, e.g. the model catalog ``/models``."""
        return await self._client_now().get(path, cast_to=object)

    def _client_now(self) -> openai.AsyncOpenAI:
        """The run's client, made on first use (a replay-only run never imports the SDK)."""
        if self._client is None:
            self._client = self._client_factory(self.settings)
            # The SDK's modules and models, just imported, live as long as the session.
            self._heap.refreeze()
        return self._client

    def _emit(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _finish(self, request: ChatRequest, outcome: Outcome) -> Outcome:
        self.stats.done += 1
        if isinstance(outcome, FetchError):
            self.stats.failed += 1
        else:
            self._ledger.received(request, outcome)
            if outcome.latency_ms is not None:  # always measured here; None types recordings'
                self.stats.latencies_ms.append(outcome.latency_ms)
        if self._on_result is not None:
            self._on_result(request, outcome)
        self._emit()
        return outcome

    async def _fetch(self, client: openai.AsyncOpenAI, request: ChatRequest) -> Outcome:
        """Send one request until it is answered, fails for good, or its retries run out."""
        retries = self.settings.retries
        timeouts = 0
        for attempt in range(retries + 1):
            try:
                async with self._semaphore:
                    uses = await self._admit(request)
                    if attempt == 0:
                        self.stats.sent += 1
                    else:
                        # Counted once admitted: a retry the budget refuses was never sent.
                        self.stats.retried += 1
                    try:
                        completion = await self._send(client, request, *uses)
                        # Booked before the release below, so the budget never misses it.
                        return self._finish(request, completion)
                    finally:
                        self._ledger.release(request)
            except ItemError as exc:
                return self._finish(request, exc.error)
            except RetryableError as exc:
                timeouts += exc.error.kind == "timeout"
                if attempt == retries or timeouts > TIMEOUT_RETRIES:
                    gave_up = f"gave up after {attempt} {'retry' if attempt == 1 else 'retries'}"
                    error = exc.error
                    message = f"{error.message} ({gave_up})"
                    return self._finish(request, FetchError(message, error.status, error.kind))
                delay = self._backoff(attempt + 1, exc.retry_after)
                if exc.rate_limited and exc.retry_after is None and self._learned_now:
                    # The limit it stated is now a window that holds this request back.
                    self._learned_now = False
                elif exc.rate_limited:
                    # Not a sleep: _admit holds this request back with every other one.
                    self._pause(delay)
                self._emit()
                if not exc.rate_limited:
                    await asyncio.sleep(delay)
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
            refusal = self._ledger.refusal(request)
            if refusal is not None:
                raise ItemError(FetchError(refusal, kind="budget"))
            now = time.monotonic()
            paced = self._pacer.delay(tokens, now)
            wait = max(self._resume_at - now, 0.0 if paced is None else paced)
            if wait <= 0 and paced is not None:
                break
            # An answer can make room early (in the windows, fresh headers), so its signal also
            # ends the wait.
            await wait_event(self._settled, wait if paced is not None else None)
        # Checked by refusal() above with no await since: released when the attempt ends.
        self._ledger.reserve(request)
        return self._pacer.reserve(tokens, now)

    async def _send(
        self, client: openai.AsyncOpenAI, request: ChatRequest, use: Use | None, tokens: Use | None
    ) -> Completion:
        """One HTTP attempt, its errors sorted into fatal, retryable and item failures."""
        import httpx2
        import openai

        self.stats.in_flight += 1
        self._ledger.sent()
        self._emit()
        started = time.perf_counter()
        estimate = tokens.amount if tokens is not None else float(estimate_tokens(request))
        headers: Mapping[str, str] | None = None
        path, body = request_body(request)
        try:
            # The whole attempt, connect to last byte: the SDK's timeout bounds each socket read,
            # so a body trickling in byte by byte would never time out.
            async with asyncio.timeout(self.settings.timeout):
                # The SDK for transport, auth and its error classes, but the JSON body as it is:
                # building its typed ChatCompletion costs more CPU than the HTTP exchange. The
                # raw response, for its headers: rate-limit figures and the request id.
                response = await client.post(path, body=body, cast_to=httpx2.Response)
                headers = response.headers
                data = response.json()
            latency = (time.perf_counter() - started) * 1000
            # The effort recorded: the one sent, else the one the API reports, else the
            # model's default from the catalog.
            completion = parse_completion(
                data, latency, request.api, headers, self.settings.prices,
                sent_effort=sent_effort(request),
                default_effort=self.default_efforts.get(request.model),
            )
        except TimeoutError:
            self._ledger.lost(request)
            raise self._timed_out() from None
        except asyncio.CancelledError:
            # Ctrl-C or SIGTERM while the request was out: the server may answer, and bill it.
            self._ledger.lost(request)
            raise
        except openai.APIConnectionError as exc:
            # The SDK's aiohttp transport reports refused, reset and DNS failures as timeouts.
            failure = transport_error(exc)
            if failure is None:
                self._ledger.lost(request)
                raise self._timed_out() from None
            message, after_send = failure
            if after_send:
                self._ledger.lost(request)
            raise RetryableError(FetchError(message, kind="connection")) from None
        except openai.APIStatusError as exc:
            classified = classify(exc)
            if isinstance(classified, FatalAPIError):
                self._fatal = classified
                # The run stops, but this request failed and the summary counts it so.
                self.stats.done += 1
                self.stats.failed += 1
            if exc.status_code == 429:
                self._learn(api_message(exc))
            raise classified from None
        except (ValueError, TypeError, AttributeError) as exc:
            # The SDK lets a 200 with an unparsable body through as a JSONDecodeError. The
            # request was answered, so it may have been billed.
            self._ledger.lost(request)
            message = f"malformed response: {exc}"
            raise RetryableError(FetchError(message, kind="malformed")) from None
        except Exception as exc:
            # What else the transport raises on a reply it cannot read (an invalid status line,
            # ...): the request went out, so it may have been billed, and it is retried as a
            # malformed reply would be, counted, instead of escaping the engine's books.
            self._ledger.lost(request)
            message = f"unreadable response: {type(exc).__name__}: {exc}"
            raise RetryableError(FetchError(message, kind="malformed")) from None
        finally:
            self.stats.in_flight -= 1
            # Answered or failed, the request has reached the server if it ever will.
            self._pacer.answered(estimate, headers, time.monotonic(), use, tokens)
            self._settled.set()
            self._settled = asyncio.Event()
        if tokens is not None and self._pacer.tokens is not None:
            # Without usage the reservation's estimate stands.
            used = tokens.amount if completion.usage is None else completion.usage.total_tokens
            self._pacer.tokens.settle(tokens, used, time.monotonic())
        return completion

    def _learn(self, message: str) -> None:
        """A 429 that states the account's limit sets the engine's limit for the rest of the run."""
        stated = self._pacer.learn(message, time.monotonic())
        if stated is not None:
            self._learned_now = True
            self.stats.learned = [limit.describe() for limit in self._pacer.learned]
            self._emit()

    def _timed_out(self) -> RetryableError:
        # Made when needed: most attempts never time out.
        return RetryableError(FetchError(
            f"timed out after {self.settings.timeout:g} s (--grok-timeout)", kind="timeout"
        ))


def default_client(settings: EngineSettings) -> openai.AsyncOpenAI:
    """The SDK client: its own retries off, because the engine owns the only retry loop."""
    import openai

    # The SDK's aiohttp transport (the openai[aiohttp] extra): bench/prefetch.py measured its
    # default httpx2 one 1.3x slower than a plain gather at 16-64 in flight, aiohttp faster.
    # The read timeout is a backstop: Engine._send bounds the whole attempt itself, and reports
    # it the same way whichever fires first.
    timeout = openai.Timeout(settings.timeout, connect=min(CONNECT_TIMEOUT, settings.timeout))
    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=timeout),
    )


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set (True) or `timeout` seconds have passed (False; None: never).

    Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that lands in the same
    loop pass as the event (it returns instead), so a task would go on sending after Ctrl-C
    or SIGTERM. asyncio.timeout tells its own cancellation from anyone else's.
    Raises CancelledError when the waiting task is cancelled.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
