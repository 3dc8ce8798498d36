"""--grok-batch hook-up: the prefetch's flows, answered by engine/batch.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_grokeval.checks.registry import CHECKS
from pytest_grokeval.data import ChatRequest, Outcome
from pytest_grokeval.engine.engine import Engine, EngineSettings
from pytest_grokeval.options import Settings
from pytest_grokeval.prefetch.jobs import Job
from pytest_grokeval.prefetch.loop import run_sync

if TYPE_CHECKING:
    import openai
    import pytest

    from pytest_grokeval.report.terminal import Progress


def batch_engine(
    settings: Settings,
    engine_settings: EngineSettings,
    jobs: Sequence[Job],
    to_send: Sequence[ChatRequest],
    cache: pytest.Cache | None,
    on_result: Callable[[ChatRequest, Outcome], None],
    client: Callable[[EngineSettings], openai.AsyncOpenAI],
    progress: Progress | None,
) -> Engine:
    """The batch engine for this run, once its models are known to be batchable.

    Raises BatchStop (a FatalAPIError) for Responses-API cases or unbatchable models.
    """
    from pytest_grokeval.engine import batch, batchrules, batchstore

    batchrules.refuse_responses(to_send)
    models = {r.model for r in to_send}
    if any(CHECKS[c.base].needs_grader for job in jobs for c in job.checks):
        models.add(settings.judge_model or settings.model)
    batchrules.refuse_unbatchable(models)
    return batch.BatchEngine(
        engine_settings,
        key=batchstore.request_set_key(
            (r for job in jobs for r in job.requests), settings.base_url
        ),
        cache=cache,
        wait=settings.batch_wait,
        on_result=on_result,
        on_line=progress.show if progress else None,
        say=progress.say if progress else _silent,
        client_factory=client,
        resume=batchrules.resume_hint(settings.record),
    )


def cancel_batches(cache: pytest.Cache | None, client: openai.AsyncOpenAI) -> None:
    """--grok-batch-cancel: cancel what earlier batch runs left, then stop the run.

    Always raises BatchStop, whose message names what was cancelled.
    """
    from pytest_grokeval.engine import batchrules, batchstore

    cancelled, gone, bad = run_sync(lambda: batchstore.cancel_stored(cache, client))
    done = "; ".join(
        ([f"cancelled batch {', '.join(cancelled)}"] if cancelled else [])
        + [f"batch {g} is gone; forgetting it" for g in gone]
        + [f"ignored a malformed cache record ({b})" for b in bad]
    ) or "pytest's cache names no batch of an earlier --grok-batch run"
    raise batchrules.BatchStop(f"--grok-batch-cancel: {done}; nothing else was sent")


def _silent(text: str) -> None:
    """Where batch messages go without a terminal (an xdist worker): pytest's cache has them."""
