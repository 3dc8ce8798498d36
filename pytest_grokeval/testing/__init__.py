"""A fake xAI Grok server for trying suites offline and for testing against: real HTTP on 127.0.0.1.

In Python::

    from pytest_grokeval.testing import FakeGrok, Reply

    with FakeGrok(answers={"capital": "Paris"}) as grok:
        grok.add_fault(Reply(status=429, retry_after=1), first=1)
        ...  # pytest --grok-base-url grok.url; then read grok.log, grok.request_count

From a shell: ``python -m pytest_grokeval.testing --latency 0.05`` prints ``READY <url>``
and serves until SIGINT/SIGTERM (see ``--help``).

It answers ``POST /v1/chat/completions`` and ``POST /v1/responses`` like xAI (flat error
bodies, ``cost_in_usd_ticks`` usage, ``x-request-id``), lists `DEFAULT_MODELS` on
``GET /v1/models``, and injects what a `Reply` describes. ``FakeGrok(routes=[...])``
serves more aiohttp routes next to those (handlers find the server as
``request.app[GROK]``). Modules: `server` (lifetime and
statistics), `app` (routes and delivery), `replies` (bodies), `request` (reading bodies),
`faults` (rules), `models` (the catalog), `limits` (hidden rate limits), `stats` (counters).
"""

from __future__ import annotations

from .app import GROK
from .models import DEFAULT_MODELS, ModelSpec
from .replies import Reply
from .request import CHAT_PATH, RESPONSES_PATH, FakeRequest, LoggedRequest
from .server import FakeGrok

__all__ = [
    "CHAT_PATH",
    "DEFAULT_MODELS",
    "GROK",
    "RESPONSES_PATH",
    "FakeGrok",
    "FakeRequest",
    "LoggedRequest",
    "ModelSpec",
    "Reply",
]
