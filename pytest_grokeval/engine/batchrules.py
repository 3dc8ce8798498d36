"""Batch mode's rules and results: the models and endpoints it refuses, the stop that says
so, and how one Batch API result becomes an Outcome."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pytest_grokeval.data import ChatRequest, FetchError, Outcome
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.engine.pricing import Prices, cost_from_usage
from pytest_grokeval.engine.wire import parse_completion

# xAI: "Model grok-4.5 is not supported for batch processing" (live, 2026-07); the model cards
# of 4.6, 4.7 and Grok Build mark Batch unavailable (shared research notes §1.1).
UNBATCHABLE = frozenset(
    {"grok-4.5", "grok-4.5-latest", "grok-4.6", "grok-4.7", "grok-build-0.1", "grok-code-fast-1"}
)
RESUME = (
    "resume with `pytest --grok-batch` (same selection), "
    "or cancel with `pytest --grok-batch-cancel`"
)


def resume_hint(record: str) -> str:
    """How to resume or cancel, repeating a record mode other than the default `new`."""
    if record == "new":
        return RESUME
    return RESUME.replace("--grok-batch`", f"--grok-batch --grok-record={record}`", 1)


class BatchStop(FatalAPIError):
    """Batch mode cannot go on (a refused model, a cancelled batch): the run stops, saying why."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.error = FetchError(message, kind="fatal")


def refuse_unbatchable(models: Iterable[str]) -> None:
    """Raise BatchStop naming the models xAI does not batch, before anything is created."""
    refused = sorted(set(models) & UNBATCHABLE)
    if refused:
        names = ", ".join(repr(m) for m in refused)
        raise BatchStop(
            f"--grok-batch: xAI's Batch API does not take {names}; nothing was sent. "
            "Run those cases without --grok-batch (deselect them with -k), or use another model"
        )


def refuse_responses(requests: Iterable[ChatRequest]) -> None:
    """Raise BatchStop when a request is for the Responses API: batch mode sends chat only."""
    if any(request.api == "responses" for request in requests):
        raise BatchStop(
            "--grok-batch sends Chat Completions only, and some selected cases use "
            "api: responses; nothing was sent. Run them without --grok-batch, or with api: chat"
        )



def read_result(
    result: Any, latency_ms: float, prices: Prices | None
) -> tuple[Outcome, bool]:
    """The Outcome of one result's ``batch_result`` (a Completion with ``via="batch"``, or a
    FetchError for an error or a malformed body), and whether its cost was estimated: without
    ``cost_in_usd_ticks`` it is the list price halved (US dollars; None when unpriced)."""
    response = result.get("response") if isinstance(result, dict) else None
    body = response.get("chat_get_completion") if isinstance(response, dict) else None
    if body is None:
        error = result.get("error") if isinstance(result, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        return FetchError(f"the batch answered with an error: {message or result!r}"), False
    try:
        completion = parse_completion(body, latency_ms, prices=prices)
    except ValueError as exc:
        return FetchError(f"malformed batch result: {exc}", kind="malformed"), False
    usage = body.get("usage") if isinstance(body, dict) else None
    cost = completion.cost_usd
    estimated = False
    if not (isinstance(usage, dict) and isinstance(usage.get("cost_in_usd_ticks"), int)):
        # No ticks: the list price halved, the Batch API's documented discount.
        listed = cost_from_usage(completion.model, completion.usage, None, prices)
        estimated = listed is not None
        cost = None if listed is None else listed / 2
    return dataclasses.replace(completion, cost_usd=cost, via="batch"), estimated


def field(data: Any, name: str) -> Any:
    """``data[name]`` of a Batch API reply; FatalAPIError when the reply lacks it."""
    if not isinstance(data, dict) or name not in data:
        raise FatalAPIError(
            FetchError(f"the Batch API answered without {name!r}: {str(data)[:200]!r}"),
            "check --grok-base-url",
        )
    return data[name]
