"""`FakeGrok`: the fake server's lifetime on its own thread, its settings, and its statistics."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .app import build_app
from .faults import FaultBook, FaultRule
from .limits import RateLimits
from .models import DEFAULT_MODELS, Catalog, ModelSpec
from .replies import Reply
from .request import FakeRequest, LoggedRequest
from .stats import Count, Ledger

# The listen queue must hold a benchmark's whole burst, or the kernel drops SYNs and the
# client stalls a full second on the retransmit.
_BACKLOG = 1024
# Handlers still running at stop() are cancelled first; this only bounds idle connections.
_SHUTDOWN_SECONDS = 0.5


@dataclass
class _Running:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    stopping: asyncio.Event
    port: int


class FakeGrok:
    """An xAI-compatible server (chat completions, Responses, models) on its own thread.

    `latency`: seconds before each answer; `api_keys`: the keys accepted (None: any Bearer
    key); `answers`: prompt substring -> answer text, first match wins; `model_aliases`:
    requested -> reported model name; `responder`: called for each model request not taken
    by a fault rule, returning a `Reply` or None for the default; `models`: the catalog
    (default `DEFAULT_MODELS`), enforced only with `enforce_models` (unknown model: 404
    ``not-found``; refused parameter: 400 ``invalid-argument``); `requests_per_second`,
    `requests_per_minute`, `tokens_per_minute`: hidden limits answered with xAI's 429.

    `routes`: more aiohttp routes (``web.post(path, handler)``; also appendable to
    `self.routes` before `start()`), served next to the built-in ones; a handler finds this
    server as ``request.app[GROK]``. `app` is the aiohttp application of the current run.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        api_keys: Collection[str] | None = None,
        answers: Mapping[str, str] | None = None,
        model_aliases: Mapping[str, str] | None = None,
        responder: Callable[[FakeRequest], Reply | None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Mapping[str, ModelSpec] | None = None,
        enforce_models: bool = False,
        requests_per_second: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        routes: Iterable[web.AbstractRouteDef] = (),
    ) -> None:
        self.latency = latency
        self.answers: dict[str, str] = dict(answers or {})
        self.model_aliases: dict[str, str] = dict(model_aliases or {})
        self.responder = responder
        self.enforce_models = enforce_models
        self.catalog = Catalog(DEFAULT_MODELS if models is None else models)
        self.limits = RateLimits(requests_per_second, requests_per_minute, tokens_per_minute)
        self.ledger = Ledger()
        self.faults = FaultBook()
        self.routes: list[web.AbstractRouteDef] = list(routes)
        self._app: web.Application | None = None
        self._api_keys = None if api_keys is None else frozenset(api_keys)
        self._host = host
        self._wanted_port = port
        self._running: _Running | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> FakeGrok:
        """Start serving on a background thread; return once the socket is listening."""
        if self._running is not None:
            raise RuntimeError("this FakeGrok is already running; call stop() first")
        # An aiohttp application belongs to one event loop, so each run gets a fresh one.
        self._app = build_app(self)
        self._app.router.add_routes(self.routes)
        loop = _new_loop()
        stopping = asyncio.Event()
        ready: Future[int] = Future()
        thread = threading.Thread(
            target=self._run, args=(loop, stopping, ready), name="fake-grok", daemon=True
        )
        thread.start()
        try:
            port = ready.result()
        except BaseException:
            thread.join()
            raise
        self._running = _Running(loop, thread, stopping, port)
        return self

    def stop(self) -> None:
        """Close every connection, hanging ones included, and join the thread; idempotent."""
        running, self._running = self._running, None
        if running is None:
            return
        # The loop is already closed if its thread died; there is nothing left to stop then.
        with contextlib.suppress(RuntimeError):
            running.loop.call_soon_threadsafe(running.stopping.set)
        running.thread.join()

    def __enter__(self) -> FakeGrok:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._running is None:
            raise RuntimeError("FakeGrok is not running; call start() or use it in a with block")
        return self._running.port

    @property
    def app(self) -> web.Application:
        """The aiohttp application of the current (or last) run; RuntimeError before start()."""
        if self._app is None:
            raise RuntimeError("FakeGrok has not started; call start() or use it in a with block")
        return self._app

    @property
    def url(self) -> str:
        """The base URL to hand to the OpenAI client, ending in ``/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    def _run(
        self, loop: asyncio.AbstractEventLoop, stopping: asyncio.Event, ready: Future[int]
    ) -> None:
        try:
            loop.run_until_complete(self._serve(stopping, ready))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def _serve(self, stopping: asyncio.Event, ready: Future[int]) -> None:
        # Handler cancellation is what ends a hanging request when its client closes.
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_SECONDS,
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self._host, self._wanted_port, backlog=_BACKLOG)
            await site.start()
        except BaseException as exc:
            await runner.cleanup()
            ready.set_exception(exc)
            return
        ready.set_result(runner.addresses[0][1])
        await stopping.wait()
        await site.stop()
        tasks = list(self._handlers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Have `stop()` cancel this handler task (and its connection) if still running."""
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    # -- behaviour ------------------------------------------------------------------------------

    def add_fault(
        self,
        reply: Reply,
        *,
        every: int | None = None,
        first: int | None = None,
        match: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer matching requests with `reply` (after key, body, model and limit checks).

        `every`: every n-th model request overall; `first`: the first n the rule sees;
        `match`: prompts containing it; `times`: at most n answers. The first rule wins.
        ValueError when a count is below 1.
        """
        self.faults.add(FaultRule(reply, every=every, first=first, match=match, times=times))

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults.clear()

    def reset(self) -> None:
        """Forget the log, the counters, the rate windows and the fault rules.

        Answers, latency and the other settings stay.
        """
        self.faults.clear()
        self.limits.reset()
        self.ledger.reset()

    def decide(self, request: FakeRequest, problem: str | None = None) -> Reply:
        """The `Reply` for a model request whose body has `problem` (None if it is fine).

        In order: the body, the API key, the catalog (if enforced), the hidden limits,
        the fault rules, the responder, the default answer.
        """
        problem = self.auth_problem(request.headers) or problem
        if problem is not None:
            return Reply(status=400, error=problem)
        if self.enforce_models:
            refused = self.catalog.problem(request.body)
            if refused is not None:
                status, code, message = refused
                return Reply(status=status, error=message, code=code)
        limited = self.limits.admit()
        if limited is not None:
            self.ledger.count_rate_limited()
            message = limited.message(request.model)
            return Reply(status=429, error=message, code="resource-exhausted")
        reply = self.faults.pick(request.index, request.prompt)
        if reply is not None:
            return reply
        responder = self.responder
        if responder is None:
            return Reply()
        try:
            reply = responder(request)
        except Exception as exc:
            # The test that wrote the responder reads the failure in the 500 body it gets back.
            return Reply(status=500, error=f"responder raised {exc!r}")
        return Reply() if reply is None else reply

    def auth_problem(self, headers: Mapping[str, str]) -> str | None:
        """xAI's bad-key message for these (lower-case) headers, or None for a good key."""
        scheme, _, key = headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key and (self._api_keys is None or key in self._api_keys):
            return None
        return (
            f"Incorrect API key provided: {key[:2]}***{key[-2:]}. "
            "You can obtain an API key from https://console.x.ai."
        )

    def answer(self, prompt: str) -> str:
        """The default answer: the first `answers` entry found in `prompt`, else an echo."""
        # A copy, because a test thread may change the answers while the server reads them.
        for needle, answer in list(self.answers.items()):
            if needle in prompt:
                return answer
        return f"You said: {prompt}"

    # -- statistics -----------------------------------------------------------------------------

    request_count = Count("Model requests (chat, Responses) received, faulted or not.", "requests")
    in_flight = Count("Model requests read but not yet answered, dropped or abandoned.")
    peak_in_flight = Count("The most model requests that were in flight at once.")
    models_requests = Count("``GET /v1/models`` requests received.")
    rate_limited = Count("429s sent because a hidden rate limit was reached.")

    @property
    def log(self) -> list[LoggedRequest]:
        """The model requests the server has finished with, in arrival order."""
        return self.ledger.log

    def requests_to(self, path: str) -> int:
        """Requests received on `path`, e.g. ``/v1/chat/completions`` or ``/v1/models``."""
        return self.ledger.requests_to(path)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> None:
        """Block until `n` model requests have arrived; TimeoutError after `timeout` s."""
        self.ledger.wait_for_requests(n, timeout)

    def wait_for_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is in flight (answered, dropped, or given up by its client)."""
        self.ledger.wait_for_idle(timeout)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
