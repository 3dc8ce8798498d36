"""The fake's Batch API (xAI's inline REST flow), served next to the model routes.

    batches = FakeBatches(delay=2.0)
    with FakeGrok(routes=batches.routes()) as grok: ...

Routes (shapes as shared research notes §1.1 describe xAI's):

- ``POST /v1/batches {"name"}`` -> ``{"batch_id", "name", ...}``; at most `creations_per_second`.
- ``POST /v1/batches/{id}/requests {"batch_requests": [{"batch_request_id", "batch_request":
  {"chat_get_completion": {...}}}]}`` -> ``{}``. One call holds at most `max_add_bytes`; at
  most `add_calls_per_window` calls per rolling `window` seconds (else 429
  ``resource-exhausted``). A model in `rejected` (or marked ``batch=False`` in the catalog)
  refuses the whole call with 400 "Model <m> is not supported for batch processing."; a
  repeated id within a batch is a 400 too.
- ``GET /v1/batches/{id}`` -> ``{"batch_id", "state": {num_requests, num_pending, num_success,
  num_error, num_cancelled}, "cost_breakdown": {"total_cost_usd_ticks"}, ...}``.
- ``GET /v1/batches/{id}/results?page_size=&pagination_token=`` -> ``{"results": [...],
  "pagination_token": str | None}``; items ``{batch_request_id, batch_result: {response:
  {chat_get_completion: {...}}}}`` or ``{batch_request_id, batch_result: {error: {code,
  message}}}``. Results are listed in the order they finished; a token is an offset, so a
  client may come back with the last token it got and read only what is new. While the batch
  still has pending requests the last page carries a token too.
- ``POST /v1/batches/{id}:cancel`` -> the batch; its pending requests are cancelled.
- ``GET /_fake/batches`` (also under ``/v1``): `snapshot()` plus ``served_ids``.

A request's result is ready `delay` seconds after its add call at the latest, the call's
requests spread evenly over that time; `hold_after=N` keeps every result after the N-th of a
batch pending until `release()`. Answers come from the server's responder (its fault rules
and rate limits are for real-time traffic and do not apply), billed at half the fake's
real-time price in ticks. None of this counts as a model request (`FakeGrok.request_count`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .app import GROK, json_response
from .replies import Reply, error_body, render
from .request import CHAT_PATH, FakeRequest, parse_body

if TYPE_CHECKING:
    from .server import FakeGrok

DEFAULT_REJECTED = ("grok-4.5", "grok-4.6", "grok-4.7", "grok-code-fast-1")
MAX_ADD_BYTES = 25 * 1024 * 1024
PREFIX = "/v1/batches"


@dataclass
class _Batch:
    batch_id: str
    name: str
    created: float
    ids: set[str] = field(default_factory=set)
    pending: list[tuple[float, int, str, dict[str, Any]]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    success: int = 0
    errors: int = 0
    cancelled: int = 0
    ticks: int = 0
    served: int = 0  # results matured so far, held ones excluded


class FakeBatches:
    """The Batch API's state and counters; thread-safe (the server thread writes, tests read).

    `delay`: seconds until an add call's last result is ready; `rejected`: models refused for
    batch; `hold_after`: results per batch that mature before `release()` (None: all).
    """

    def __init__(
        self,
        *,
        delay: float = 2.0,
        rejected: Iterable[str] = DEFAULT_REJECTED,
        hold_after: int | None = None,
        add_calls_per_window: int = 100,
        window: float = 30.0,
        creations_per_second: int = 1,
        max_add_bytes: int = MAX_ADD_BYTES,
    ) -> None:
        self.delay = delay
        self.rejected = set(rejected)
        self.hold_after = hold_after
        self.add_calls_per_window = add_calls_per_window
        self.window = window
        self.creations_per_second = creations_per_second
        self.max_add_bytes = max_add_bytes
        self._changed = threading.Condition(threading.Lock())
        self._batches: dict[str, _Batch] = {}
        self._add_times: deque[float] = deque()
        self._create_times: deque[float] = deque()
        self._serial = itertools.count()
        self.created = 0
        self.add_calls = 0
        self.rate_limited = 0
        self.cancels = 0
        # One list of batch_request_ids per results page served, in order.
        self.pages: list[list[str]] = []

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes to hand to `FakeGrok(routes=...)`."""
        batch = PREFIX + "/{batch_id:[^/:]+}"
        return [
            web.post(PREFIX, self._create),
            web.post(batch + "/requests", self._add),
            web.get(batch, self._get, allow_head=False),
            web.get(batch + "/results", self._results, allow_head=False),
            web.post(batch + ":cancel", self._cancel),
            web.get("/_fake/batches", self._snapshot, allow_head=False),
            web.get("/v1/_fake/batches", self._snapshot, allow_head=False),
        ]

    # -- what tests read ----------------------------------------------------------------------

    @property
    def served_ids(self) -> list[str]:
        """Every batch_request_id returned by a results page so far, repeats included."""
        with self._changed:
            return [i for page in self.pages for i in page]

    def batch_ids(self) -> list[str]:
        with self._changed:
            return list(self._batches)

    def lose(self) -> None:
        """Forget every batch, as a restarted server (or xAI, after expiry) would: 404s."""
        with self._changed:
            self._batches.clear()
            self._changed.notify_all()

    def release(self) -> None:
        """Let results held back by `hold_after` mature (on their normal schedule)."""
        with self._changed:
            self.hold_after = None
            self._changed.notify_all()

    def wait_for_served(self, n: int, timeout: float = 30.0) -> None:
        """Block until results pages have returned `n` ids in all; TimeoutError after `timeout`."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: sum(len(p) for p in self.pages) >= n, timeout
            )
            if not done:
                served = sum(len(p) for p in self.pages)
                raise TimeoutError(f"waited {timeout}s for {n} results served; got {served}")

    def snapshot(self) -> dict[str, Any]:
        """The counters, as ``GET /_fake/batches`` shows them."""
        with self._changed:
            return {
                "created": self.created,
                "add_calls": self.add_calls,
                "rate_limited": self.rate_limited,
                "cancels": self.cancels,
                "pages": len(self.pages),
                "served": sum(len(p) for p in self.pages),
                "requests": sum(len(b.ids) for b in self._batches.values()),
            }

    # -- handlers -----------------------------------------------------------------------------

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        data = self.snapshot()
        data["served_ids"] = self.served_ids
        return web.json_response(data)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = _auth(request)
        if refused is not None:
            return refused
        body = await _json(request)
        now = time.monotonic()
        with self._changed:
            limited = _over(self._create_times, now, 1.0, self.creations_per_second)
            if limited:
                self.rate_limited += 1
                message = f"Batch creation is limited to {self.creations_per_second} per second"
                return _error(429, message, "resource-exhausted")
            batch_id = f"batch_{next(self._serial):06d}"
            name = str(body.get("name") or batch_id) if isinstance(body, dict) else batch_id
            self._batches[batch_id] = _Batch(batch_id, name, time.time())
            self.created += 1
            self._changed.notify_all()
            return web.json_response(self._describe(self._batches[batch_id]))

    async def _add(self, request: web.Request) -> web.StreamResponse:
        refused = _auth(request)
        if refused is not None:
            return refused
        raw = await request.read()
        if len(raw) > self.max_add_bytes:
            limit = self.max_add_bytes
            return _error(400, f"the request is {len(raw)} bytes; the limit is {limit}")
        try:
            body = json.loads(raw)
            items = body["batch_requests"]
            assert isinstance(items, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _error(400, "expected {\"batch_requests\": [...]}")
        grok = request.app[GROK]
        now = time.monotonic()
        with self._changed:
            batch = self._batches.get(request.match_info["batch_id"])
            if batch is None:
                return _error(404, "batch not found", "not-found")
            if _over(self._add_times, now, self.window, self.add_calls_per_window):
                self.rate_limited += 1
                return _error(
                    429,
                    f"Too many add-batch-requests calls: the limit is "
                    f"{self.add_calls_per_window} per {self.window:g} s",
                    "resource-exhausted",
                )
            self.add_calls += 1
            accepted: list[tuple[str, dict[str, Any]]] = []
            for item in items:
                chat = (item.get("batch_request") or {}).get("chat_get_completion")
                rid = item.get("batch_request_id")
                if not isinstance(chat, dict) or not isinstance(rid, str):
                    return _error(400, "each batch request needs a batch_request_id and "
                                       "batch_request.chat_get_completion")
                model = chat.get("model")
                canonical = grok.catalog.canonical(model) if isinstance(model, str) else None
                spec = grok.catalog.models.get(canonical or "")
                if model in self.rejected or (spec is not None and not spec.batch):
                    return _error(400, f"Model {model} is not supported for batch processing.")
                if rid in batch.ids or any(rid == r for r, _ in accepted):
                    return _error(400, f"batch_request_id {rid!r} is already in the batch")
                accepted.append((rid, chat))
            for position, (rid, chat) in enumerate(accepted):
                ready = now + self.delay * (position + 1) / len(accepted)
                batch.ids.add(rid)
                heapq.heappush(batch.pending, (ready, next(self._serial), rid, chat))
            self._changed.notify_all()
        return web.json_response({})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        return self._on_batch(request, lambda batch: web.json_response(self._describe(batch)))

    async def _results(self, request: web.Request) -> web.StreamResponse:
        try:
            size = int(request.query.get("page_size") or request.query.get("limit") or 100)
            start = int(request.query.get("pagination_token") or 0)
        except ValueError:
            return _error(400, "page_size and pagination_token must be integers")

        def page_of(batch: _Batch) -> web.StreamResponse:
            page = batch.results[start : start + max(1, min(size, 1000))]
            end = start + len(page)
            more = end < len(batch.results) or bool(batch.pending)
            self.pages.append([item["batch_request_id"] for item in page])
            self._changed.notify_all()
            return web.json_response(
                {"results": page, "pagination_token": str(end) if more else None}
            )

        return self._on_batch(request, page_of)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        def cancel(batch: _Batch) -> web.StreamResponse:
            batch.cancelled += len(batch.pending)
            batch.pending.clear()
            self.cancels += 1
            self._changed.notify_all()
            return web.json_response(self._describe(batch))

        return self._on_batch(request, cancel)

    def _on_batch(
        self, request: web.Request, answer: Callable[[_Batch], web.StreamResponse]
    ) -> web.StreamResponse:
        """Check the key, find the batch (xAI's 404 when unknown), bring its results up to
        now, and answer from it, all under the lock."""
        refused = _auth(request)
        if refused is not None:
            return refused
        with self._changed:
            batch = self._batches.get(request.match_info["batch_id"])
            if batch is None:
                return _error(404, "batch not found", "not-found")
            self._mature(batch, request.app[GROK])
            return answer(batch)

    # -- state --------------------------------------------------------------------------------

    def _mature(self, batch: _Batch, grok: FakeGrok) -> None:
        """Move the results whose time has come from pending to results (lock held)."""
        now = time.monotonic()
        while batch.pending and batch.pending[0][0] <= now:
            if self.hold_after is not None and batch.served >= self.hold_after:
                return
            _, _, rid, chat = heapq.heappop(batch.pending)
            batch.served += 1
            batch.results.append(self._answer(batch, rid, chat, grok))

    def _answer(
        self,
        batch: _Batch,
        rid: str,
        chat: dict[str, Any],
        grok: FakeGrok,
    ) -> dict[str, Any]:
        body, problem = parse_body(json.dumps(chat).encode(), CHAT_PATH)
        fake = FakeRequest(batch.success + batch.errors, body, {}, CHAT_PATH)
        responder = grok.responder
        reply = Reply(status=400, error=problem) if problem else (
            (responder(fake) if responder else None) or Reply()
        )
        model = reply.model or grok.model_aliases.get(fake.model) or fake.model
        content = reply.content if reply.content is not None else grok.answer(fake.prompt)
        document = json.loads(render(fake, reply, content, model, None))
        if reply.status != 200:
            batch.errors += 1
            return {
                "batch_request_id": rid,
                "batch_result": {
                    "error": {"code": reply.status, "message": document.get("error", "")}
                },
            }
        usage = document.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("cost_in_usd_ticks"), int):
            usage["cost_in_usd_ticks"] //= 2  # the Batch API bills half the real-time price
            batch.ticks += usage["cost_in_usd_ticks"]
        batch.success += 1
        return {
            "batch_request_id": rid,
            "batch_result": {"response": {"chat_get_completion": document}},
        }

    def _describe(self, batch: _Batch) -> dict[str, Any]:
        return {
            "batch_id": batch.batch_id,
            "name": batch.name,
            "create_time": batch.created,
            "expire_time": batch.created + 30 * 86400,
            "state": {
                "num_requests": len(batch.ids),
                "num_pending": len(batch.pending),
                "num_success": batch.success,
                "num_error": batch.errors,
                "num_cancelled": batch.cancelled,
            },
            "cost_breakdown": {"total_cost_usd_ticks": batch.ticks},
        }


def _over(stamps: deque[float], now: float, seconds: float, limit: int) -> bool:
    """Whether one more call now exceeds `limit` per `seconds`; counts it when it does not."""
    while stamps and stamps[0] <= now - seconds:
        stamps.popleft()
    if len(stamps) >= limit:
        return True
    stamps.append(now)
    return False


def _auth(request: web.Request) -> web.Response | None:
    headers = {name.lower(): value for name, value in request.headers.items()}
    problem = request.app[GROK].auth_problem(headers)
    return None if problem is None else _error(400, problem)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except ValueError:
        return {}


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    headers = {"retry-after": "1"} if status == 429 else None
    return json_response(status, error_body(status, message, code), headers)
