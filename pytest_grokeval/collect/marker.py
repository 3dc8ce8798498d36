"""Python tests: ``@pytest.mark.grok(...)`` requests, fetched in the same prefetch as suites."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_grokeval.data import ChatRequest
from pytest_grokeval.prefetch.run import Job

MARKER_HELP = (
    "grok(prompt=None, messages=None, system=None, model=None, params=None): fetch this "
    "request in grokeval's prefetch; the grok_response fixture holds the response"
)
_KEYS = ("prompt", "messages", "system", "model", "params")


class MarkerError(Exception):
    """A grok marker with the wrong arguments: an error of that test, at setup."""


def request_for(
    item: pytest.Item, default_model: str, default_api: str = "chat"
) -> ChatRequest | None:
    """The request a test's grok marker asks for, or None for unmarked tests."""
    mark = item.get_closest_marker("grok")
    if mark is None:
        return None
    if mark.args:
        raise MarkerError("@pytest.mark.grok takes keyword arguments only, e.g. prompt='...'")
    kwargs: dict[str, Any] = dict(mark.kwargs)
    unknown = sorted(set(kwargs) - set(_KEYS))
    if unknown:
        raise MarkerError(
            f"@pytest.mark.grok got unknown {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(_KEYS)}"
        )
    prompt, messages = kwargs.get("prompt"), kwargs.get("messages")
    if (prompt is None) == (messages is None):
        raise MarkerError("@pytest.mark.grok needs exactly one of prompt= or messages=")
    turns: list[dict[str, Any]] = []
    system = kwargs.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise MarkerError(f"@pytest.mark.grok system= must be a string, got {system!r}")
        turns.append({"role": "system", "content": system})
    if prompt is not None:
        if not isinstance(prompt, str):
            raise MarkerError(f"@pytest.mark.grok prompt= must be a string, got {prompt!r}")
        turns.append({"role": "user", "content": prompt})
    elif not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
    ):
        raise MarkerError("@pytest.mark.grok messages= must be a list of {role, content} dicts")
    else:
        turns += [dict(m) for m in messages]
    model = kwargs.get("model") or default_model
    params = kwargs.get("params") or {}
    if not isinstance(model, str) or not isinstance(params, dict):
        raise MarkerError("@pytest.mark.grok model= must be a string and params= a dict")
    return ChatRequest(model=model, messages=tuple(turns), params=dict(params), api=default_api)


def job_for(item: pytest.Item, default_model: str, default_api: str = "chat") -> Job | None:
    """The marked test's one request, recorded per test module like a suite's cases."""
    try:
        request = request_for(item, default_model, default_api)
    except MarkerError:
        return None  # the fixture reports it, at the test that has it
    return None if request is None else Job(item.nodeid, item.name, item.path, (request,))
