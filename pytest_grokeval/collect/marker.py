"""Python tests: ``@pytest.mark.grok(...)`` requests, fetched in the same prefetch as suites."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_grokeval.collect.items import Sample, fetch_failure
from pytest_grokeval.collect.settingkeys import RESERVED_PARAMS
from pytest_grokeval.data import APIS, ChatRequest, Completion, FetchError
from pytest_grokeval.prefetch.jobs import Job
from pytest_grokeval.state import RUN_KEY

MARKER_HELP = (
    "grok(prompt=None, messages=None, system=None, model=None, params=None, api=None): fetch "
    "this request in grokeval's prefetch; the grok_response fixture holds the response"
)
_KEYS = ("prompt", "messages", "system", "model", "params", "api")


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
    for key in params:
        if key in RESERVED_PARAMS:
            raise MarkerError(
                f"@pytest.mark.grok params= cannot set {key!r}; {RESERVED_PARAMS[key]}"
            )
    api = kwargs.get("api") or default_api
    if api not in APIS:
        raise MarkerError(f"@pytest.mark.grok api= must be chat or responses, got {api!r}")
    return ChatRequest(model=model, messages=tuple(turns), params=dict(params), api=api)


def job_for(item: pytest.Item, default_model: str, default_api: str = "chat") -> Job | None:
    """The marked test's one request, recorded per test module like a suite's cases."""
    try:
        request = request_for(item, default_model, default_api)
    except MarkerError:
        return None  # the fixture reports it, at the test that has it
    if request is None:
        return None
    return Job(item.nodeid, recording_key(item), item.path, (request,))


def response(item: pytest.Item) -> Completion:
    """The marked test's fetched response; fails the test when there is none, saying why."""
    run = item.config.stash[RUN_KEY]
    problem: str | None = None
    try:
        wanted = request_for(item, run.settings.model, run.settings.api)
    except MarkerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: failing inside it chains the two and prints both.
        path, line, _ = item.location
        pytest.fail(f"{path}:{(line or 0) + 1}: {problem}", pytrace=False)
    if wanted is None:
        pytest.fail("grok_response needs @pytest.mark.grok(prompt=...) on the test", pytrace=False)
    outcome = run.outcome(item.nodeid, 0)
    if isinstance(outcome, FetchError):
        pytest.fail(fetch_failure([outcome]), pytrace=False)
    return outcome


def recording_key(item: pytest.Item) -> str:
    """The test's address inside its module, ``TestA::test_it[1]``: unique, unlike its name."""
    module = item.getparent(pytest.Module)
    return item.nodeid if module is None else item.nodeid.removeprefix(module.nodeid + "::")


def result(item: pytest.Item, passed: bool) -> dict[str, Any] | None:
    """What reports show of a marked test, shaped like a suite item's; None when unmarked.

    The test's own assertions are its checks: its one sample has none and ``passed`` says
    how the test went.
    """
    if item.get_closest_marker("grok") is None:
        return None
    run = item.config.stash[RUN_KEY]
    samples = []
    try:
        request = request_for(item, run.settings.model, run.settings.api)
    except MarkerError:
        request = None
    outcome = None if request is None else run.outcomes.get((item.nodeid, 0))
    if request is not None and outcome is not None:
        sample = Sample(request, outcome, results=[])
        data = sample.to_json()
        if isinstance(outcome, Completion):
            data["passed"] = passed
        samples.append(data)
    return {
        "id": item.nodeid,
        "suite": run.display(item.path),
        "line": (item.location[1] or 0) + 1,
        "name": recording_key(item),
        "case_id": getattr(item, "originalname", item.name),
        "repeat": 1,
        "min_pass_rate": 1.0,
        "samples": samples,
    }
