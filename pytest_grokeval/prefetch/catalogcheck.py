"""The model catalog checked before sending: what xAI would refuse is refused here first."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_grokeval.checks.judge import JUDGE_PARAMS, parse_rubric
from pytest_grokeval.checks.registry import CHECKS, Check
from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.catalog import Catalog, cache_key, cached_listing, check_requests
from pytest_grokeval.engine.engine import Engine
from pytest_grokeval.options import Settings
from pytest_grokeval.prefetch.jobs import Job

if TYPE_CHECKING:
    import pytest


async def check_catalog(
    engine: Engine,
    settings: Settings,
    cache: pytest.Cache | None,
    jobs: Sequence[Job],
    to_send: Sequence[ChatRequest],
) -> str | None:
    """Refuse, before anything is sent, what the model catalog says xAI would refuse.

    Returns a warning when the catalog could not be read (the requests go out unchecked), else
    None. Raises CatalogError naming the refused models, efforts or parameters.
    """
    catalog = await _catalog(engine, settings, cache)
    if isinstance(catalog, str):
        return catalog
    engine.default_efforts = catalog.default_efforts()
    live = {request.fingerprint for request in to_send}
    wanted: dict[str, list[ChatRequest]] = {}
    for job in jobs:
        requests = [r for r in job.requests if r.fingerprint in live]
        if not requests:
            continue
        wanted[job.key] = requests
        graders = [c for c in job.checks if CHECKS[c.base].needs_grader]
        models = {_grader_model(settings, c) for c in graders}
        if models:
            # The grader's prompt is fixed; only its model and params can be refused.
            wanted[f"{job.key} (judge)"] = [
                ChatRequest(model=m, messages=(), params=dict(JUDGE_PARAMS))
                for m in sorted(models)
            ]
    check_requests(catalog, wanted)
    return None


def _grader_model(settings: Settings, check: Check) -> str:
    rubric = parse_rubric(check.arg)
    return rubric.model or settings.judge_model or settings.model


async def _catalog(engine: Engine, settings: Settings, cache: pytest.Cache | None) -> Catalog | str:
    """The API's model listing: from pytest's cache if under a day old, else fetched once.

    A server without ``/models`` (many OpenAI-compatible proxies) gives a warning, not an
    error: the requests go out unchecked.
    """
    import openai

    key = cache_key(settings.base_url)
    now = time.time()
    listing: Any = cached_listing(cache.get(key, None), now) if cache else None
    fresh = listing is None
    where = f"GET /models at {urlsplit(settings.base_url).hostname}"
    if fresh:
        try:
            listing = await engine.get_json("/models")
        except openai.APIStatusError as exc:
            return _no_catalog(where, f"HTTP {exc.status_code}")
        except openai.OpenAIError as exc:
            return _no_catalog(where, f"{exc.__cause__ or exc}")
    try:
        catalog = Catalog.from_listing(listing)
    except ValueError as exc:
        return _no_catalog(where, str(exc))
    if fresh and cache is not None:
        cache.set(key, {"fetched": now, "listing": listing})
    return catalog


def _no_catalog(where: str, reason: str) -> str:
    """The warning that nothing was checked."""
    return (
        f"the model catalog ({where}) could not be read ({reason}); models, reasoning "
        "efforts and parameters were not checked before sending"
    )
