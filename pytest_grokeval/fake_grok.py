"""The project's own fake xAI Grok server: real HTTP/1.1 on 127.0.0.1, with latency and faults.

Tests run it in-process (``with FakeGrok() as grok: ...`` then ``--grok-base-url grok.url``);
benchmarks run ``python -m pytest_grokeval.fake_grok`` and wait for its ``READY <url>`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

# xAI answers errors with a flat body whose `code` is the gRPC status text, not OpenAI's nested
# `{"error": {...}}` object; the SDK then exposes the message string as `exc.body`.
_CODE_TEXT = {
    400: "Client specified an invalid argument",
    401: "Unauthenticated",
    403: "Permission denied",
    404: "Some requested entity was not found",
    429: "Some resource has been exhausted",
    500: "Internal error",
    503: "The service is currently unavailable",
}
# xAI bills in ticks (1 USD = 1e10 ticks); the fake charges $1.25 / $2.50 per 1M tokens.
_TICKS_PER_PROMPT_TOKEN = 12_500
_TICKS_PER_COMPLETION_TOKEN = 25_000
# A body this large is a client bug, not a prompt; refuse it rather than buffer it.
_MAX_BODY = 64 * 1024 * 1024
# The listen queue must hold a benchmark's whole burst, or the kernel drops SYNs and the
# client stalls a full second on the retransmit.
_BACKLOG = 1024


@dataclass
class Reply:
    """What the server does for one request. Unset fields mean the default behaviour."""

    content: str | None = None
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float | None = None
    hang: bool = False
    drop: bool = False
    bad_json: bool = False
    finish_reason: str = "stop"
    model: str | None = None
    usage: dict[str, int] | None = None
    # The reply shapes of refusals, tool calls and reasoning models (same as testing/).
    null_content: bool = False
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_tokens: int | None = None


class _ChatBody:
    """How a chat request body reads; shared by the request the responder sees and the log."""

    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The requested model ('' if the body has none)."""
        model = self.body.get("model")
        return model if isinstance(model, str) else ""

    @property
    def prompt(self) -> str:
        """The text of the last user message ('' if none)."""
        for message in reversed(_messages(self.body)):
            if message.get("role") == "user":
                return _text(message.get("content"))
        return ""


@dataclass(frozen=True)
class FakeRequest(_ChatBody):
    """A chat completion request as the fault rules and the responder see it."""

    index: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class LoggedRequest(_ChatBody):
    """A chat completion request the server has finished with."""

    index: int
    body: dict[str, Any]
    status: int
    started: float
    finished: float


@dataclass
class _Fault:
    reply: Reply
    every: int | None = None
    first: int | None = None
    match: str | None = None
    times: int | None = None
    seen: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        for name in ("every", "first", "times"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"fault {name}={value!r} must be at least 1")

    def observe(self, index: int, prompt: str) -> bool:
        """Count the request toward `first`; say whether this rule would answer it."""
        if self.match is not None and self.match not in prompt:
            return False
        position = self.seen
        self.seen += 1
        if self.first is not None and position >= self.first:
            return False
        if self.every is not None and (index + 1) % self.every:
            return False
        return self.times is None or self.applied < self.times


@dataclass(frozen=True)
class _HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _Malformed(Exception):
    """The client sent something that is not an HTTP/1.1 request this server reads."""


@dataclass
class _Running:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    stopping: asyncio.Event
    port: int


class FakeGrok:
    """An OpenAI-compatible chat completions server that answers like xAI, on its own thread."""

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
    ) -> None:
        self.latency = latency
        self.answers: dict[str, str] = dict(answers or {})
        self.model_aliases: dict[str, str] = dict(model_aliases or {})
        self.responder = responder
        self._api_keys = None if api_keys is None else frozenset(api_keys)
        self._host = host
        self._wanted_port = port
        self._running: _Running | None = None
        # One lock guards every counter; the condition lets waiters block instead of polling.
        self._changed = threading.Condition(threading.Lock())
        self._count = 0
        self._in_flight = 0
        self._peak = 0
        self._log: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> FakeGrok:
        """Start serving on a background thread; return once the socket is listening."""
        if self._running is not None:
            raise RuntimeError("this FakeGrok is already running; call stop() first")
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
    def url(self) -> str:
        """The base URL to hand to the OpenAI client, ending in ``/v1``."""
        return f"http://{self._host}:{self.port}/v1"

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
        """Answer matching requests with `reply` (after key and body checks); first rule wins."""
        self._add_rule(_Fault(reply, every=every, first=first, match=match, times=times))

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self._changed:
            self._faults.clear()

    def reset(self) -> None:
        """Forget the log, the counters and the fault rules; answers and latency stay."""
        with self._changed:
            self._count = 0
            self._peak = self._in_flight
            self._log.clear()
            self._faults.clear()
            self._changed.notify_all()

    def _add_rule(self, rule: _Fault) -> None:
        with self._changed:
            self._faults.append(rule)

    # -- statistics -----------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Chat completion requests received, faulted or not."""
        with self._changed:
            return self._count

    @property
    def in_flight(self) -> int:
        """Requests read but not yet answered, dropped or abandoned."""
        with self._changed:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were in flight at once."""
        with self._changed:
            return self._peak

    @property
    def log(self) -> list[LoggedRequest]:
        """The requests the server has finished with, in arrival order."""
        with self._changed:
            return sorted(self._log, key=lambda entry: entry.index)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> None:
        """Block until `n` chat completion requests have arrived."""
        what = f"{n} request{'' if n == 1 else 's'} to arrive"
        self._wait(lambda: self._count >= n, timeout, what)

    def wait_for_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is in flight (answered, dropped, or given up by its client)."""
        self._wait(lambda: self._in_flight == 0, timeout, "no request in flight")

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"waited {timeout}s for {what}; requests={self._count}, "
                    f"in_flight={self._in_flight}"
                )

    def _stats(self) -> dict[str, int]:
        with self._changed:
            return {
                "requests": self._count,
                "peak_in_flight": self._peak,
                "in_flight": self._in_flight,
            }

    # -- the event loop thread ------------------------------------------------------------------

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
        try:
            server = await asyncio.start_server(
                self._connection, self._host, self._wanted_port, backlog=_BACKLOG
            )
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(server.sockets[0].getsockname()[1])
        await stopping.wait()
        server.close()
        # Connections accepted in the loop's last turn start their task on the next one; let them
        # register so that they are cancelled and closed too.
        await asyncio.sleep(0)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except _Malformed as exc:
            writer.write(_response(400, _error_body(400, str(exc)), keep_alive=False))
        except (OSError, EOFError):
            pass  # the client went away; only this connection ends
        except asyncio.CancelledError:
            # Only stop() cancels these tasks, and Python 3.11's stream callback chokes on a
            # cancelled task (it calls task.exception()), so end normally instead.
            pass
        except Exception as exc:
            # A bug in the fake must show up in the test that hit it, not take the server down.
            writer.write(_response(500, _error_body(500, f"fake server bug: {exc!r}"), False))
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; say whether the connection stays open for another."""
        request = await _read_request(reader)
        if request is None:
            return False
        if request.path.endswith("/chat/completions"):
            if request.method == "POST":
                return await self._chat(request, reader, writer)
            message = f"{request.method} is not allowed on {request.path}; use POST"
            data = _response(405, _error_body(405, message), request.keep_alive, {"allow": "POST"})
        else:
            data = self._control(request)
        writer.write(data)
        await writer.drain()
        return request.keep_alive

    def _control(self, request: _HttpRequest) -> bytes:
        _, marker, name = request.path.rpartition("/_fake/")
        route = (request.method, name if marker else "")
        result: object
        if route == ("GET", "stats"):
            result = self._stats()
        elif route == ("POST", "reset"):
            self.reset()
            result = {"reset": True}
        elif route == ("GET", "log"):
            result = [
                {
                    "index": entry.index,
                    "status": entry.status,
                    "started": entry.started,
                    "finished": entry.finished,
                    "model": entry.model,
                    "prompt": entry.prompt,
                }
                for entry in self.log
            ]
        else:
            message = f"no route for {request.method} {request.path}"
            return _response(404, _error_body(404, message), request.keep_alive)
        return _response(200, json.dumps(result).encode(), request.keep_alive)

    async def _chat(
        self, request: _HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        body, problem = _parse_body(request.body)
        problem = self._auth_problem(request.headers) or problem
        started = time.monotonic()
        with self._changed:
            index = self._count
            self._count += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            self._changed.notify_all()
        fake = FakeRequest(index, body, request.headers)
        settled = False
        try:
            reply = Reply(status=400, error=problem) if problem else self._reply_for(fake)
            if reply.hang:
                await _until_closed(reader)
                return False
            delay = self.latency if reply.latency is None else reply.latency
            if delay > 0:
                await asyncio.sleep(delay)
            if reply.drop:
                return False
            data = _response(
                reply.status, self._payload(fake, reply), request.keep_alive, _headers(reply)
            )
            # Settle before writing, so a client that has its answer already sees it counted.
            self._settle(index, body, reply.status, started)
            settled = True
            writer.write(data)
            await writer.drain()
            return request.keep_alive
        finally:
            if not settled:
                self._settle(index, body, 0, started)

    def _settle(self, index: int, body: dict[str, Any], status: int, started: float) -> None:
        entry = LoggedRequest(index, body, status, started, time.monotonic())
        with self._changed:
            self._in_flight -= 1
            self._log.append(entry)
            self._changed.notify_all()

    def _auth_problem(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key and (self._api_keys is None or key in self._api_keys):
            return None
        return (
            f"Incorrect API key provided: {key[:2]}***{key[-2:]}. "
            "You can obtain an API key from https://console.x.ai."
        )

    def _reply_for(self, request: FakeRequest) -> Reply:
        prompt = request.prompt
        with self._changed:
            # Every rule observes every request, so `first` means the first requests overall.
            answering = [rule for rule in self._faults if rule.observe(request.index, prompt)]
            if answering:
                answering[0].applied += 1
                return answering[0].reply
        responder = self.responder
        if responder is None:
            return Reply()
        try:
            reply = responder(request)
        except Exception as exc:
            # The test that wrote the responder reads the failure in the 500 body it gets back.
            return Reply(status=500, error=f"responder raised {exc!r}")
        return Reply() if reply is None else reply

    def _payload(self, request: FakeRequest, reply: Reply) -> bytes:
        if reply.status != 200:
            return _error_body(reply.status, reply.error or f"injected {reply.status}")
        content = reply.content if reply.content is not None else self._answer(request.prompt)
        requested = request.model
        messages = _messages(request.body)
        prompt_chars = sum(len(_text(message.get("content"))) for message in messages)
        override = reply.usage or {}
        usage = _usage(
            override.get("prompt_tokens", max(1, prompt_chars // 4)),
            override.get("completion_tokens", max(1, len(content) // 4)),
        )
        usage.update(override)
        if reply.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
            usage["total_tokens"] += reply.reasoning_tokens
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.null_content else content,
            "refusal": reply.refusal,
        }
        if reply.tool_calls is not None:
            message["tool_calls"] = [
                {
                    "id": f"call_{request.index}_{n}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
                for n, call in enumerate(reply.tool_calls)
            ]
        completion = {
            "id": f"fake-{request.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or self.model_aliases.get(requested, requested),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }
        data = json.dumps(completion).encode()
        return data[: len(data) // 2] if reply.bad_json else data

    def _answer(self, prompt: str) -> str:
        # A copy, because a test thread may change the answers while the server reads them.
        for needle, answer in list(self.answers.items()):
            if needle in prompt:
                return answer
        return f"You said: {prompt}"


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def _read_request(reader: asyncio.StreamReader) -> _HttpRequest | None:
    """Read one request; None when the client closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _Malformed("the connection ended inside the request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _Malformed("the request head is too large") from None
    request_line, *header_lines = head[:-4].decode("latin-1").lstrip("\r\n").split("\r\n")
    try:
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _Malformed(f"bad request line {request_line[:100]!r}") from None
    if not version.startswith("HTTP/1."):
        raise _Malformed(f"unsupported protocol {version[:20]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise _Malformed(f"bad header line {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _Malformed("only Content-Length bodies are supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _Malformed(f"bad content-length {headers['content-length'][:20]!r}") from None
    if not 0 <= length <= _MAX_BODY:
        raise _Malformed(f"content-length {length} is out of range")
    body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    return _HttpRequest(method, target.partition("?")[0], headers, body, keep_alive)


async def _until_closed(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _response(
    status: int, payload: bytes, keep_alive: bool, headers: Mapping[str, str] | None = None
) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(payload)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _headers(reply: Reply) -> dict[str, str]:
    headers = dict(reply.headers)
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    if reply.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{reply.retry_after_ms:g}"
    return headers


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"code": _CODE_TEXT.get(status, "Unknown error"), "error": message}).encode()


def _parse_body(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The request body as a dict, and what is wrong with it as a chat request (None if fine)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return {}, f"Failed to parse the request body as JSON: {exc}"
    if not isinstance(body, dict):
        return {}, "Failed to deserialize the JSON body into the target type: expected an object"
    for key, kind in (("model", str), ("messages", list)):
        if not isinstance(body.get(key), kind):
            return body, (
                "Failed to deserialize the JSON body into the target type: "
                f"`{key}` is missing or not a {kind.__name__}"
            )
    if body.get("stream"):
        return body, "streaming is not supported by the fake server"
    return body, None


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, dict)]


def _text(content: object) -> str:
    """A message's text: a plain string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """Usage the way xAI reports it, with its `num_sources_used` and `cost_in_usd_ticks` extras."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
        "num_sources_used": 0,
        "cost_in_usd_ticks": prompt_tokens * _TICKS_PER_PROMPT_TOKEN
        + completion_tokens * _TICKS_PER_COMPLETION_TOKEN,
    }


# -- command line -------------------------------------------------------------------------------


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(f"expected 1/0/true/false, got {text!r}")


_RULE_KEYS: dict[str, Callable[[str], Any]] = {
    "every": int,
    "first": int,
    "match": str,
    "times": int,
}
_REPLY_KEYS: dict[str, Callable[[str], Any]] = {
    "status": int,
    "content": str,
    "error": str,
    "retry_after": float,
    "retry_after_ms": float,
    "latency": float,
    "hang": _flag,
    "drop": _flag,
    "bad_json": _flag,
    "finish_reason": str,
    "model": str,
}


def _parse_fault(spec: str) -> _Fault:
    """A fault rule from ``key=value,...``, e.g. ``every=3,status=429,retry_after=1``."""
    rule: dict[str, Any] = {}
    reply: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, equals, value = item.partition("=")
        key = key.strip()
        table, target = (_RULE_KEYS, rule) if key in _RULE_KEYS else (_REPLY_KEYS, reply)
        if not equals or key not in table:
            allowed = ", ".join([*_RULE_KEYS, *_REPLY_KEYS])
            raise argparse.ArgumentTypeError(
                f"fault {spec!r}: {item!r} is not key=value with a key among: {allowed}"
            )
        try:
            target[key] = table[key](value.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"fault {spec!r}: {key}: {exc}") from None
    try:
        return _Fault(Reply(**reply), **rule)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"fault {spec!r}: {exc}") from None


def _load_answers(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as file:
            answers = json.load(file)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{path}: {exc}") from None
    if not isinstance(answers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in answers.items()
    ):
        raise argparse.ArgumentTypeError(
            f"{path}: expected a JSON object mapping prompt substrings to answer strings"
        )
    return answers


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, after printing ``READY <url>``."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_grokeval.fake_grok", description=main.__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--answers", type=_load_answers, default={}, metavar="FILE.json")
    parser.add_argument(
        "--fault",
        type=_parse_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="e.g. every=3,status=429,retry_after=1 or match=boom,status=500,times=2",
    )
    args = parser.parse_args(argv)
    server = FakeGrok(host=args.host, port=args.port, latency=args.latency, answers=args.answers)
    for rule in args.fault:
        server._add_rule(rule)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with server:
        print(f"READY {server.url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
