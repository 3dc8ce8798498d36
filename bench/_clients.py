"""Client factories for `Engine(settings, client_factory=...)`, compared by the benchmarks.

Two axes: the transport (the SDK's default httpx2, the SDK's aiohttp one, or no SDK at all)
and the response path (`typed`: `chat.completions.create`, which transforms the TypedDict
params and builds a pydantic ChatCompletion; `post`: `client.post(path, body=...,
cast_to=object)`, the same HTTP exchange, auth, timeouts and error classes, with the JSON body
as it is). Every client answers both calls the engine has used, so the factories work with the
engine of either day: `.chat.completions.create(**kwargs)` returns what the older attribute
reading `parse_completion` reads, and `.post(...)` returns the body as a dict.

  sdk-httpx2, sdk-aiohttp       the SDK client itself: the engine's own call path decides
  sdk-*-typed, sdk-*-post       that call path forced, whatever the engine calls
  lean-aiohttp                  an experiment, not a proposal: a bare aiohttp POST + json.loads
                                that shows what the SDK costs per request
  sdk-aiohttp-stamp-at-send     sdk-aiohttp whose rate-window stamps move to the moment httpx2
                                hands the request to the transport (bench/rate.py what-if)
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pytest_grokeval.engine import budgets as _budgets
from pytest_grokeval.engine.engine import EngineSettings

if TYPE_CHECKING:
    import openai


def sdk_httpx2(settings: EngineSettings, **http: Any) -> openai.AsyncOpenAI:
    """The SDK on its default transport, retries off (the engine owns the only retry loop)."""
    import openai  # lazily, as the plugin does: the import is part of the measured prefetch

    # Without options the SDK makes its own client, exactly as an application's would be.
    http_client = openai.DefaultAsyncHttpxClient(timeout=settings.timeout, **http) if http else None
    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
        http_client=http_client,
    )


def sdk_aiohttp(settings: EngineSettings, **http: Any) -> openai.AsyncOpenAI:
    """The SDK on its aiohttp transport (the `openai[aiohttp]` extra)."""
    import openai

    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=settings.timeout, **http),
    )


def lean_response(data: dict[str, Any]) -> SimpleNamespace:
    """The attributes the older `parse_completion` reads, straight from the JSON body."""
    usage = data.get("usage")
    lean_usage = None
    if isinstance(usage, dict):
        known = (
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        )
        lean_usage = SimpleNamespace(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            total_tokens=usage.get("total_tokens"),
            prompt_tokens_details=_namespace(usage.get("prompt_tokens_details")),
            completion_tokens_details=_namespace(usage.get("completion_tokens_details")),
            model_extra={k: v for k, v in usage.items() if k not in known},
        )
    choices = [
        SimpleNamespace(
            message=_namespace(choice.get("message")), finish_reason=choice.get("finish_reason")
        )
        for choice in data.get("choices") or ()
    ]
    return SimpleNamespace(choices=choices, usage=lean_usage, model=data.get("model"))


def _namespace(value: Any) -> SimpleNamespace | None:
    return SimpleNamespace(**value) if isinstance(value, dict) else None


class _Forced:
    """An SDK client whose both calls take one path: `typed` or `post`."""

    def __init__(self, sdk: openai.AsyncOpenAI, path: str) -> None:
        self._sdk = sdk
        self._path = path
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    async def _typed(self, body: dict[str, Any]) -> Any:
        return await self._sdk.chat.completions.create(**body)

    async def _raw(self, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._sdk.post("/chat/completions", body=body, cast_to=object)
        if not isinstance(data, dict):
            raise ValueError(f"the response is not a JSON object: {str(data)[:200]!r}")
        return data

    async def _create(self, **kwargs: Any) -> Any:
        if self._path == "typed":
            return await self._typed(kwargs)
        return lean_response(await self._raw(kwargs))

    async def post(self, path: str, *, body: dict[str, Any], cast_to: Any = object) -> Any:
        if self._path == "typed":
            return (await self._typed(body)).model_dump()
        return await self._raw(body)

    async def close(self) -> None:
        await self._sdk.close()

    async def __aenter__(self) -> _Forced:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


class _LeanAiohttpClient:
    """A bare aiohttp POST + json.loads: no SDK at all (and no error mapping either)."""

    def __init__(self, settings: EngineSettings) -> None:
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "authorization": f"Bearer {settings.api_key}",
            "content-type": "application/json",
        }
        self._timeout = settings.timeout
        self._session: Any = None
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    async def post(self, path: str, *, body: dict[str, Any], cast_to: Any = object) -> Any:
        if self._session is None:  # made on first use, inside the running loop
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        async with self._session.post(
            self._url, data=json.dumps(body).encode(), headers=self._headers
        ) as response:
            data = await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)

    async def _create(self, **kwargs: Any) -> SimpleNamespace:
        return lean_response(await self.post("/chat/completions", body=kwargs))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> _LeanAiohttpClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


# -- the stamp-at-send what-if ------------------------------------------------------------------

_reserved: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "bench_reserved", default=None
)


def _stamp_at_send(settings: EngineSettings) -> openai.AsyncOpenAI:
    """Window reservations made by this task are re-stamped when httpx2 sends the request.

    The engine stamps a request when it admits it; the SDK then builds it and the loop may run
    other tasks first, so the server's arrival gaps differ from the stamps' by that jitter.
    """
    window = _budgets.SlidingWindow
    if not getattr(window.reserve, "bench_patched", False):
        original = window.reserve

        def reserve(self: Any, amount: float, now: float) -> Any:
            use = original(self, amount, now)
            uses = _reserved.get()
            if uses is None:
                uses = []
                _reserved.set(uses)
            uses.append(use if use is not None else self._uses[-1])
            return use

        reserve.bench_patched = True  # type: ignore[attr-defined]
        window.reserve = reserve  # type: ignore[method-assign]

    async def restamp(request: Any) -> None:
        uses = _reserved.get()
        if uses:
            now = time.monotonic()
            for use in uses:
                use.stamp = now
            uses.clear()

    return sdk_aiohttp(settings, event_hooks={"request": [restamp]})


FACTORIES: dict[str, Callable[[EngineSettings], Any]] = {
    "sdk-httpx2": sdk_httpx2,
    "sdk-aiohttp": sdk_aiohttp,
    "sdk-httpx2-typed": lambda settings: _Forced(sdk_httpx2(settings), "typed"),
    "sdk-aiohttp-typed": lambda settings: _Forced(sdk_aiohttp(settings), "typed"),
    "sdk-httpx2-post": lambda settings: _Forced(sdk_httpx2(settings), "post"),
    "sdk-aiohttp-post": lambda settings: _Forced(sdk_aiohttp(settings), "post"),
    "lean-aiohttp": _LeanAiohttpClient,
    "sdk-aiohttp-stamp-at-send": _stamp_at_send,
}
