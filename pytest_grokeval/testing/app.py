"""The fake's HTTP face: the aiohttp application, its routes, and how a `Reply` is delivered.

Routes (each also without the ``/v1`` prefix): ``POST /v1/chat/completions``,
``POST /v1/responses``, ``GET /v1/models``, and the control routes ``GET /_fake/stats``,
``POST /_fake/reset``, ``GET /_fake/log`` (which count nothing). Other paths get xAI's flat
404 body, other methods a 405. Every response carries a fresh ``x-request-id``.

More routes (say a Batch API) go in `FakeGrok(routes=...)`; a handler finds its server as
``request.app[GROK]`` and can answer a model request body with `FakeGrok.decide` and
`replies.render`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .replies import Reply, error_body, render, reply_headers, tokens_used
from .request import FakeRequest, LoggedRequest, parse_body

if TYPE_CHECKING:
    from .server import FakeGrok

GROK: web.AppKey[FakeGrok] = web.AppKey("grok")
# A body this large is a client bug, not a prompt; refuse it rather than buffer it.
MAX_BODY = 64 * 1024 * 1024
_JSON = "application/json"
# uuid4 per response costs a urandom call each, which showed in the benchmark's server CPU.
_RUN = uuid.uuid4().hex[:12]
_SERIAL = itertools.count()


def build_app(grok: FakeGrok) -> web.Application:
    """The application serving `grok`: model, catalog and control routes."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_flat_errors])
    app[GROK] = grok
    app.on_response_prepare.append(_request_id)
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", _model_request)
        app.router.add_post(f"{prefix}/responses", _model_request)
        app.router.add_get(f"{prefix}/models", _models, allow_head=False)
        app.router.add_get(f"{prefix}/_fake/stats", _stats, allow_head=False)
        app.router.add_post(f"{prefix}/_fake/reset", _reset)
        app.router.add_get(f"{prefix}/_fake/log", _log, allow_head=False)
    return app


def json_response(status: int, data: bytes, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with exactly `data` as its body."""
    return web.Response(status=status, body=data, content_type=_JSON, headers=headers)


async def _request_id(request: web.Request, response: web.StreamResponse) -> None:
    # xAI puts the request id in this header only, never in the body.
    response.headers.setdefault("x-request-id", f"{_RUN}-{next(_SERIAL):08d}")


@web.middleware
async def _flat_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}; use POST"
        else:
            message = f"no route for {request.method} {request.path}"
        allow = {"allow": exc.headers["allow"]} if "allow" in exc.headers else {}
        return json_response(exc.status, error_body(exc.status, message), allow)
    except Exception as exc:
        # A bug in the fake must show up in the test that hit it, not as aiohttp's HTML page.
        return json_response(500, error_body(500, f"fake server bug: {exc!r}"))


async def _model_request(request: web.Request) -> web.StreamResponse:
    # Arrival is stamped first thing: tests compare these times against a client's pacing.
    started = time.monotonic()
    grok = request.app[GROK]
    task = asyncio.current_task()
    if task is not None:
        grok.track(task)
    raw = await request.read()
    headers = {name.lower(): value for name, value in request.headers.items()}
    body, problem = parse_body(raw, request.path)
    index = grok.ledger.arrive(request.path)
    fake = FakeRequest(index, body, headers, request.path)
    settled = False

    def settle(status: int) -> None:
        nonlocal settled
        settled = True
        entry = LoggedRequest(index, body, status, started, time.monotonic(), request.path)
        grok.ledger.settle(entry)

    try:
        reply = grok.decide(fake, problem)
        if reply.hang:
            # The server runs with handler cancellation: this ends when the client closes.
            await asyncio.Event().wait()
        delay = grok.latency if reply.latency is None else reply.latency
        if delay > 0:
            await asyncio.sleep(delay)
        if reply.drop:
            settle(0)
            if request.transport is not None:
                request.transport.close()
            await asyncio.Event().wait()
        content = reply.content if reply.content is not None else grok.answer(fake.prompt)
        requested = fake.model
        model = reply.model or grok.model_aliases.get(requested) or (
            grok.catalog.canonical(requested) or requested
        )
        effort = grok.catalog.reported_effort(body, requested)
        data = render(fake, reply, content, model, effort)
        response_headers = reply_headers(reply)
        if reply.status == 200 and reply.raw_body is None:
            grok.limits.spend(tokens_used(fake, reply, content))
            response_headers.update(grok.limits.headers())
        if reply.trickle is not None:
            return await _trickle(request, reply, data, response_headers, settle)
        # Settle before writing, so a client that has its answer already sees it counted.
        settle(reply.status)
        return json_response(reply.status, data, response_headers)
    finally:
        if not settled:
            settle(0)


async def _trickle(
    request: web.Request,
    reply: Reply,
    data: bytes,
    headers: dict[str, str],
    settle: Callable[[int], None],
) -> web.StreamResponse:
    """Send the headers, then one byte every `reply.trickle` seconds."""
    assert reply.trickle is not None
    response = web.StreamResponse(status=reply.status, headers=headers)
    response.content_type = _JSON
    response.content_length = len(data)
    await response.prepare(request)
    for position in range(len(data)):
        await asyncio.sleep(reply.trickle)
        if position == len(data) - 1:
            settle(reply.status)
        await response.write(data[position : position + 1])
    if not data:
        settle(reply.status)
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.StreamResponse:
    grok = request.app[GROK]
    grok.ledger.count_models_request(request.path)
    headers = {name.lower(): value for name, value in request.headers.items()}
    problem = grok.auth_problem(headers)
    if problem is not None:
        return json_response(400, error_body(400, problem))
    return web.json_response(grok.catalog.listing())


async def _stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[GROK].ledger.snapshot())


async def _reset(request: web.Request) -> web.StreamResponse:
    request.app[GROK].reset()
    return web.json_response({"reset": True})


async def _log(request: web.Request) -> web.StreamResponse:
    entries: list[dict[str, Any]] = [
        {
            "index": entry.index,
            "path": entry.path,
            "status": entry.status,
            "started": entry.started,
            "finished": entry.finished,
            "model": entry.model,
            "prompt": entry.prompt,
        }
        for entry in request.app[GROK].log
    ]
    return web.json_response(entries)
