"""Running the prefetch's coroutines from pytest's synchronous hooks."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private loop, never touching the thread's current event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(_as_coroutine(make))
    # pytest was started from inside a running loop (a notebook, an async app): use a thread.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="grokeval") as pool:
        return pool.submit(lambda: asyncio.run(_as_coroutine(make))).result()


async def _as_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
