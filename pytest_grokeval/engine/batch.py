"""Batch mode: a run's requests sent through xAI's Batch API instead of real-time requests.

`BatchEngine` answers `fetch(request)` like `Engine`, so the prefetch's per-item flows (samples,
graders, recording) stay as they are: the requests asked for at the start go into one batch,
grader requests asked for later into a follow-up batch, and each fetch resolves when its result
is read. The batch ids, what was added and how far the results were read live in pytest's cache
(engine/batchstore.py), keyed by the run's request set, so a rerun polls instead of creating.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pytest_grokeval.data import ChatRequest, FetchError, Outcome, canonical_json
from pytest_grokeval.engine.batchrules import (
    RESUME,
    BatchStop,
    field,
    read_result,
)
from pytest_grokeval.engine.batchstore import Batch, Cache, Stored, still_there, unanswered
from pytest_grokeval.engine.engine import (
    BACKOFF_CAP,
    Engine,
    EngineSettings,
    ResultCallback,
    wait_event,
)
from pytest_grokeval.engine.errors import FatalAPIError, ItemError, RetryableError, classify
from pytest_grokeval.engine.pricing import TICKS_PER_USD

if TYPE_CHECKING:
    import openai

# xAI's limits: 25 MB per add call and 100 add calls per rolling 30 s; a margin below both.
ADD_BYTES = 24 * 1024 * 1024
ADD_COUNT = 1000
ADD_CALLS = 95
ADD_WINDOW = 30.0
CREATE_INTERVAL = 1.05
PAGE_SIZE = 100
POLL_FIRST = 0.5
POLL_MAX = 30.0
# The requests asked for at the start all arrive within one turn of the loop; this bounds the
# wait for the ones that do not (a job that first reads a recording, say).
GATHER_IDLE = 0.2

class BatchEngine(Engine):
    """Sends a run's requests as batches; `fetch` resolves when a request's result is read.

    `key`: the run's request-set key (cache entry); `wait`: seconds to poll before giving up
    on pending results (None: until all are read); `on_result`: called for each result as it
    is read (the prefetch records it there, journaled at once); `on_line`: the progress line;
    `say`: messages the user must see (the batch id, how to resume).
    """

    def __init__(
        self,
        settings: EngineSettings,
        *,
        key: str,
        cache: Cache | None,
        wait: float | None,
        on_result: ResultCallback | None = None,
        on_line: Callable[[str], None] | None = None,
        say: Callable[[str], None] = print,
        client_factory: Callable[[EngineSettings], openai.AsyncOpenAI] | None = None,
        resume: str = RESUME,
    ) -> None:
        super().__init__(settings, on_result=on_result, client_factory=client_factory)
        self.key = key
        self._resume = resume
        self.batches: dict[str, Batch] = {}
        self.estimated = 0  # results without ticks, costed at half the list price
        self._stored = Stored(cache, key, say)
        self._wait = wait
        self._on_line = on_line
        self._say = say
        self._futures: dict[str, asyncio.Future[Outcome]] = {}
        self._requests: dict[str, ChatRequest] = {}
        self._added_at: dict[str, float] = {}
        self._queue: list[ChatRequest] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._expired: str | None = None
        self._add_calls: deque[float] = deque()
        self._created_at = -CREATE_INTERVAL
        self._failure: Exception | None = None

    async def __aenter__(self) -> BatchEngine:
        # Ctrl-C and SIGTERM (prefetch/stopping.py) cancel the prefetch at an await; the
        # runner records a page and stores its token with none in between, so a rerun reads on
        # from exactly where this one stopped.
        self._runner = asyncio.ensure_future(self._guarded())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Whatever stopped the run, the same: unread results are cancelled and reported.
        runner = self._runner
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        unread = [
            f
            for f in self._futures.values()
            if not f.done() or f.cancelled() or f.exception() is not None
        ]
        for future in unread:
            future.cancel()
        if self._client is not None:
            await self._client.close()
        self.stats.total = len(self._futures)
        if self.estimated:
            self._say(
                f"grokeval: {self.estimated} batch results carried no cost; each is costed at "
                "half the list price (the Batch API's discount)"
            )
        for batch in self.batches.values():
            self._say(
                f"grokeval: batch {batch.batch_id} ({batch.role}) has cost "
                f"${batch.ticks / TICKS_PER_USD:.6f} so far, by its cost_breakdown"
            )
        if unread and self.batches:
            ids = ", ".join(b.batch_id for b in self.batches.values())
            self._say(
                f"grokeval: batch {ids} keeps running at xAI with {len(unread)} results not "
                f"read; {self._resume}"
            )
        elif not unread and self._expired is None:
            self._stored.finish(self.batches, self._say)

    async def fetch(self, request: ChatRequest) -> Outcome:
        """The outcome of one request, added to a batch once however many callers ask."""
        future = self._futures.get(request.fingerprint)
        if future is None:
            if self._failure is not None:
                raise self._failure
            if self._expired is not None:
                return FetchError(self._expired, kind="pending")
            future = asyncio.get_running_loop().create_future()
            self._futures[request.fingerprint] = future
            self._requests[request.fingerprint] = request
            self._queue.append(request)
            self.stats.total = max(self.stats.total, len(self._futures))
            self._wake.set()
        else:
            self.stats.deduplicated += 1
        return await asyncio.shield(future)

    # -- the driver ---------------------------------------------------------------------------

    async def _guarded(self) -> None:
        """The driver; an error that stops it is handed to every fetch still waiting."""
        try:
            await self._drive()
        except Exception as exc:
            self._failure = exc
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(exc)

    async def _drive(self) -> None:
        started = time.monotonic()
        await self._gathered()
        # The catalog check may have made the client already (Engine.get_json): one per run.
        if self._client is None:
            self._client = self._client_factory(self.settings)
        client = self._client
        poll = POLL_FIRST
        polling = 0.0
        while True:
            if self._queue:
                role = "judge" if "main" in self.batches else "main"
                requests, self._queue = self._queue, []
                for owner, part in self._stored.split(requests, role).items():
                    await self._add(client, await self._open(client, owner), part)
            # --grok-batch-wait counts from the first poll: creating and adding is not polling.
            polling = polling or time.monotonic()
            got = 0
            for batch in list(self.batches.values()):
                got += await self._read(client, batch)
            self._line(started)
            if got:
                poll = POLL_FIRST
            self._stored.save(self.batches.values())
            if self._wait is not None and time.monotonic() - polling >= self._wait:
                self._expire()
                return
            outstanding = any(not f.done() for f in self._futures.values())
            timeout = poll if outstanding else None
            if self._wait is not None:
                left = self._wait - (time.monotonic() - polling)
                timeout = left if timeout is None else min(timeout, left)
            await wait_event(self._wake, timeout)
            self._wake.clear()
            if not got:
                poll = min(poll * 1.5, POLL_MAX)

    async def _gathered(self) -> None:
        """Wait until the run's planned requests have all been asked for (or asking stops)."""
        while len(self._futures) < self.stats.total or not self._futures:
            self._wake.clear()
            if not await wait_event(self._wake, GATHER_IDLE) and self._futures:
                return

    async def _open(self, client: openai.AsyncOpenAI, role: str) -> Batch:
        """This run's batch for `role`: the one the cache names, else a new one."""
        if role in self.batches:
            return self.batches[role]
        found = self._stored.load(role)
        state = self._call(client.get, f"/batches/{found.batch_id}") if found else None
        if found is not None and state is not None and not await still_there(state):
            self._say(
                f"grokeval: batch {found.batch_id} ({role}) is gone at xAI; forgetting "
                "it and sending what is missing in a new batch"
            )
            self._stored.drop(role)
            found = None
        if found is not None:
            batch = found
            self._say(f"grokeval: resuming batch {batch.batch_id} ({role})")
        else:
            # The cache must take the new id before the batch exists (BatchStop if not): else
            # every rerun would make, and pay for, another batch.
            self._stored.save(self.batches.values())
            name = f"grokeval-{self.key}-{role}"
            # xAI allows one batch creation per second per team.
            await asyncio.sleep(max(0.0, self._created_at + CREATE_INTERVAL - time.monotonic()))
            self._created_at = time.monotonic()
            data = await self._call(client.post, "/batches", body={"name": name})
            batch = Batch(role, str(field(data, "batch_id")))
            self._say(f"grokeval: created batch {batch.batch_id} ({role}); {self._resume}")
        self.batches[role] = batch
        self._stored.save(self.batches.values())
        return batch

    async def _add(
        self, client: openai.AsyncOpenAI, batch: Batch, requests: list[ChatRequest]
    ) -> None:
        """Add what the batch lacks, in calls within xAI's size and rate limits."""
        now = time.monotonic()
        chunk: list[dict[str, Any]] = []
        size = 0
        for request in requests:
            self._added_at.setdefault(request.fingerprint, now)
            if request.fingerprint in batch.added:
                continue
            item = {
                "batch_request_id": request.fingerprint,
                "batch_request": {"chat_get_completion": request.create_kwargs()},
            }
            length = len(canonical_json(item).encode()) + 1
            if chunk and (size + length > ADD_BYTES or len(chunk) >= ADD_COUNT):
                await self._add_call(client, batch, chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += length
        if chunk:
            await self._add_call(client, batch, chunk)

    async def _add_call(
        self, client: openai.AsyncOpenAI, batch: Batch, chunk: list[dict[str, Any]]
    ) -> None:
        while len(self._add_calls) >= ADD_CALLS:
            wait = self._add_calls[0] + ADD_WINDOW - time.monotonic()
            if wait <= 0:
                self._add_calls.popleft()
            else:
                await asyncio.sleep(wait)
        self._add_calls.append(time.monotonic())
        path = f"/batches/{batch.batch_id}/requests"
        try:
            await self._call(client.post, path, body={"batch_requests": chunk})
        except ItemError as exc:
            if not batch.added:
                with contextlib.suppress(Exception):
                    await client.post(f"/batches/{batch.batch_id}:cancel", cast_to=object)
                self.batches.pop(batch.role, None)
                self._stored.drop(batch.role)
            raise BatchStop(f"--grok-batch: {exc.error.message}; nothing more was sent") from None
        batch.added.update(item["batch_request_id"] for item in chunk)
        self.stats.sent += len(chunk)
        self.stats.attempts += len(chunk)
        self._stored.save(self.batches.values())

    async def _read(self, client: openai.AsyncOpenAI, batch: Batch) -> int:
        """Read the batch's state and every new result page; return how many results came."""
        state = await self._call(client.get, f"/batches/{batch.batch_id}")
        counts = field(state, "state") if isinstance(state, dict) else {}
        finished = isinstance(counts, dict) and counts.get("num_pending", 1) == 0
        if isinstance(counts, dict):
            batch.pending = int(counts.get("num_pending") or 0)
            batch.succeeded = int(counts.get("num_success") or 0)
            batch.failed = int(counts.get("num_error") or 0) + int(counts.get("num_cancelled") or 0)
        cost = state.get("cost_breakdown") if isinstance(state, dict) else None
        if isinstance(cost, dict) and isinstance(cost.get("total_cost_usd_ticks"), int):
            batch.ticks = cost["total_cost_usd_ticks"]
        got = 0
        while True:
            params: dict[str, Any] = {"page_size": PAGE_SIZE}
            if batch.token:
                params["pagination_token"] = batch.token
            path = f"/batches/{batch.batch_id}/results"
            page = await self._call(client.get, path, options={"params": params})
            results = page.get("results") if isinstance(page, dict) else None
            for item in results if isinstance(results, list) else []:
                got += self._result(item)
            token = page.get("pagination_token") if isinstance(page, dict) else None
            if not results or not isinstance(token, str) or token == batch.token:
                return got + (self._unanswered(batch) if finished else 0)
            batch.token = token
            # Kept per page: a run stopped mid-read makes the next one read at most this page
            # again, not every page since the last poll.
            self._stored.save(self.batches.values())

    def _result(self, item: Any) -> int:
        """Resolve the fetch a result answers (unknown or already answered: ignored)."""
        rid = item.get("batch_request_id") if isinstance(item, dict) else None
        future = self._futures.get(rid) if isinstance(rid, str) else None
        if future is None or future.done() or rid is None:
            return 0
        request = self._requests[rid]
        latency = (time.monotonic() - self._added_at.get(rid, time.monotonic())) * 1000
        outcome, estimated = read_result(item.get("batch_result"), latency, self.settings.prices)
        self.estimated += estimated
        future.set_result(self._finish(request, outcome))
        return 1

    def _unanswered(self, batch: Batch) -> int:
        """Fail what a finished batch never answered though added (the cache named a batch
        that lacks it): polling would never end. The entry is forgotten, so a rerun resends."""
        message = (
            f"batch {batch.batch_id} finished without a result for this request (pytest's "
            "cache named a batch that lacks it); rerun with --grok-batch to send it anew"
        )
        missing = unanswered(batch, self._futures)
        for rid in missing:
            self._futures[rid].set_result(FetchError(message))
        self.stats.done += len(missing)
        self.stats.failed += len(missing)
        return len(missing)

    def _expire(self) -> None:
        """--grok-batch-wait is over: what is still unread fails, naming its batch."""
        for rid, future in self._futures.items():
            if not future.done():
                batch = next((b for b in self.batches.values() if rid in b.added), None)
                where = batch.batch_id if batch else "no batch"
                self._expired = (
                    f"still pending in batch {where} after --grok-batch-wait "
                    f"{self._wait:g} s; {self._resume}"
                )
                future.set_result(FetchError(self._expired, kind="pending"))
                self.stats.done += 1
                self.stats.failed += 1
        if self._expired is not None:
            self._say(f"grokeval: {self._expired}")

    def _line(self, started: float) -> None:
        if self._on_line is None:
            return
        parts = [
            f"batch {b.batch_id}: {b.pending} pending, {b.succeeded} succeeded, {b.failed} failed"
            for b in self.batches.values()
        ]
        self._on_line("; ".join(parts) + f", {time.monotonic() - started:.1f}s")

    # -- plumbing -----------------------------------------------------------------------------

    async def _call(self, send: Callable[..., Awaitable[Any]], path: str, **options: Any) -> Any:
        """One Batch API call, retried on 429, 5xx and connection errors; fatal ones raise."""
        import openai

        for attempt in range(self.settings.retries + 1):
            try:
                return await send(path, cast_to=object, **options)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                problem = RetryableError(
                    FetchError(f"connection failed: {exc.__cause__ or exc}", kind="connection")
                )
            except openai.APIStatusError as exc:
                classified = classify(exc)
                if not isinstance(classified, RetryableError):
                    raise classified from None
                problem = classified
            if attempt == self.settings.retries:
                raise FatalAPIError(problem.error, "the Batch API kept failing; " + self._resume)
            ceiling = min(BACKOFF_CAP, self.settings.backoff_base * 2.0**attempt)
            await asyncio.sleep(problem.retry_after or ceiling * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")  # pragma: no cover
