"""The plugin's own hooks, registered through ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin, as any pytest hook.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import openai

    from pytest_grokeval.engine.engine import EngineSettings


@pytest.hookspec(firstresult=True)
def pytest_grokeval_make_client(settings: EngineSettings) -> openai.AsyncOpenAI | None:
    """Make the ``openai.AsyncOpenAI`` client that sends this run's requests.

    Called once per run, when the first request is about to be sent (never in a replay-only
    run). ``settings`` holds ``base_url``, ``api_key``, ``timeout`` (seconds) and the rest of
    :class:`~pytest_grokeval.engine.engine.EngineSettings`. Return a client for a proxy,
    custom headers or another transport, or ``None`` to let the next implementation (in the
    end the plugin's default) decide. Keep the client's own retries off (``max_retries=0``):
    the engine owns the only retry loop, and SDK retries would bypass its concurrency limit.
    Anything else stops the run before sending (see ``client_from_hook``).
    """


class ClientHookError(Exception):
    """A pytest_grokeval_make_client implementation that raised or returned no usable client:
    the run stops before sending, and the message says what the hook gave."""


def client_from_hook(
    make_client: Callable[..., Any], settings: EngineSettings
) -> openai.AsyncOpenAI | None:
    """The hook's client, None when every implementation left it to the default.

    Raises ClientHookError when an implementation raised, returned something that is not an
    ``openai.AsyncOpenAI`` (a sync client, a coroutine from an ``async def``, anything else),
    or a client with its own retries on.
    """
    import openai

    hook = "pytest_grokeval_make_client"
    try:
        made = make_client(settings=settings)
    except (Exception, SystemExit) as exc:  # sys.exit() in a hook is a mistake too
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        raise ClientHookError(f"{hook} raised {type(exc).__name__}: {exc}{where}") from exc
    if made is None:
        return None
    if inspect.iscoroutine(made):
        made.close()  # never awaited: say so here rather than in a warning at exit
        raise ClientHookError(
            f"{hook} returned a coroutine: implement it with 'def', not 'async def'"
        )
    if not isinstance(made, openai.AsyncOpenAI):
        raise ClientHookError(
            f"{hook} returned {type(made).__module__}.{type(made).__qualname__}, not an "
            f"openai.AsyncOpenAI (return None to keep the default client)"
        )
    if made.max_retries:
        raise ClientHookError(
            f"{hook} returned a client with max_retries={made.max_retries}: pass max_retries=0, "
            f"the plugin retries itself, within --grok-max-concurrent and counting every attempt"
        )
    return made
