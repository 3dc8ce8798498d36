"""The plugin's own hooks, registered through ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin, as any pytest hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """
