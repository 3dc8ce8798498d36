"""The prefetch: replay what recordings hold, send the rest at once, check as samples arrive."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pytest_grokeval.checks.judge import JudgeError, grader_request, parse_rubric
from pytest_grokeval.checks.registry import CHECKS, Check, run_checks
from pytest_grokeval.data import ChatRequest, Completion, FetchError, Outcome
from pytest_grokeval.engine.catalog import CatalogError
from pytest_grokeval.engine.engine import Engine, EngineSettings, EngineStats, default_client
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.hookspecs import ClientHookError, client_from_hook
from pytest_grokeval.jsonfile import clean_text
from pytest_grokeval.options import Settings
from pytest_grokeval.prefetch.batching import batch_engine, cancel_batches
from pytest_grokeval.prefetch.budget import BudgetExceeded, check_budget, grader_models
from pytest_grokeval.prefetch.catalogcheck import check_catalog
from pytest_grokeval.prefetch.jobs import Job, grader_name
from pytest_grokeval.prefetch.loop import run_sync
from pytest_grokeval.prefetch.replay import Recordings
from pytest_grokeval.prefetch.sampling import Plan
from pytest_grokeval.prefetch.stopping import sigterm_as_interrupt
from pytest_grokeval.recordings.store import RecordingError, RecordingStore
from pytest_grokeval.state import Collection, Counts, FetchResults, Summary

if TYPE_CHECKING:
    import openai
    import pytest

    from pytest_grokeval.report.terminal import Progress

    # config.hook.pytest_grokeval_make_client: called with settings=..., returns a client or None.
    ClientHook = Callable[..., openai.AsyncOpenAI | None]

T = TypeVar("T")
# The options the engine takes as they are.
_ENGINE_OPTIONS = (
    "base_url", "max_concurrent", "timeout", "retries", "rpm", "tpm", "max_cost", "backoff_base",
    "prices",
)


class _Part(Generic[T]):
    """A GrokRun attribute that is the same-named field of one of its parts (`results`, ...)."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, run: object, owner: type | None = None) -> T:
        return cast(T, getattr(getattr(run, self.part), self.name))

    def __set__(self, run: object, value: T) -> None:
        setattr(getattr(run, self.part), self.name, value)


class GrokRun:
    """Lives for one pytest session: created in pytest_configure, read until the summary.

    Its state is three typed objects with one writer each: `collection` (collection code),
    `results` (the prefetch, or the xdist follower adopting the fetcher's), `summary` (the
    prefetch). The properties below read them for the reports and the xdist hand-over.
    """

    def __init__(
        self, settings: Settings, rootpath: Path, make_client: ClientHook | None = None
    ) -> None:
        self.settings = settings
        self.rootpath = rootpath
        self._make_client = make_client
        self.redact = settings.redactor
        self.collection = Collection()
        self.results = FetchResults()
        self.summary = Summary()
        self.recordings = Recordings(settings, self.summary.counts, self.display)
        self.leader = False  # under xdist: this worker fetched for all of them
        # pytest's config.cache: the model catalog, and the ids batch mode keeps.
        self.cache: pytest.Cache | None = None
        self._finished: set[str] = set()
        self._waiting: dict[str, list[tuple[RecordingStore, str, int]]] = {}
        self._judged: set[str] = set()

    # -- reading the state (for the reports and the xdist hand-over) --------------------------

    outcomes: _Part[dict[tuple[str, int], Outcome]] = _Part("results")
    graded: _Part[dict[tuple[str, int, str], Outcome]] = _Part("results")
    counts: _Part[Counts] = _Part("summary")
    engine_stats: _Part[EngineStats] = _Part("summary")
    pruned: _Part[list[str]] = _Part("summary")
    prefetched: _Part[bool] = _Part("summary")
    fatal: _Part[str | None] = _Part("summary")  # also set by the xdist follower
    items: _Part[int] = _Part("collection")

    def outcome(self, key: str, sample: int) -> Outcome:
        """See FetchResults.outcome."""
        return self.results.outcome(key, sample)

    def checked_json(self) -> list[list[Any]]:
        """See FetchResults.checked_json."""
        return self.results.checked_json()

    def adopt_checked(self, rows: Sequence[list[Any]]) -> None:
        """See FetchResults.adopt_checked."""
        self.results.adopt_checked(rows)

    def unused(self) -> list[str]:
        """Recorded entries no collected item uses, in files whose every item was selected."""
        return self.recordings.unused(self.collection)

    def display(self, path: Path) -> str:
        """The path as the user sees it: relative to the rootdir when under it."""
        try:
            return str(path.relative_to(self.rootpath))
        except ValueError:
            return str(path)

    # -- the prefetch --------------------------------------------------------------------------

    def prefetch(self, jobs: Sequence[Job], progress: Progress | None) -> None:
        """Replay what recordings hold, send the rest at once, record what came back.

        Raises FatalAPIError (BatchStop included), BudgetExceeded or CatalogError when the run
        must stop; what was received by then is recorded all the same.
        """
        started = time.monotonic()
        if self.settings.batch_cancel:
            cancel_batches(self.cache, self._client(self._engine_settings()))
        to_send = self._to_send(jobs)
        engine = (
            batch_engine(
                self.settings, self._engine_settings(), jobs, to_send, self.cache,
                self._received, self._client, progress,
            )
            if self.settings.batch
            else Engine(
                self._engine_settings(),
                on_result=self._received,
                on_progress=progress.update if progress else None,
                client_factory=self._client,
            )
        )
        summary = self.summary
        try:
            graders = grader_models(self.settings, jobs) if to_send else set()
            check_budget(self.settings, to_send, graders)
            engine.expect(len({r.fingerprint for r in to_send}))
            with sigterm_as_interrupt():
                run_sync(lambda: self._run(engine, jobs, to_send))
        finally:
            summary.engine_stats = engine.stats
            summary.counts.deduplicated = engine.stats.deduplicated
            if progress is not None and engine.stats.total:
                progress.finish(engine.stats)
            self._unfinished(jobs)
            summary.counts.prefetch_seconds = time.monotonic() - started
            summary.prefetched = True
            if self.settings.record == "rewrite":
                summary.pruned = self.recordings.prune(self.collection)
            self.recordings.save()
            self.recordings.release()

    async def _run(
        self, engine: Engine, jobs: Sequence[Job], to_send: Sequence[ChatRequest]
    ) -> None:
        # Most jobs of a replay are one recorded sample: answered here, without a task each.
        pending = [job for job in jobs if not self._replay_now(job)]
        async with engine:
            if to_send:
                problem = await check_catalog(engine, self.settings, self.cache, jobs, to_send)
                if problem is not None:
                    self.summary.counts.warnings.append(problem)
            await asyncio.gather(*(self._job(engine, job) for job in pending))

    def _replay_now(self, job: Job) -> bool:
        """Finish a one-sample job that needs no grader from its recording, if it has one."""
        if len(job.requests) != 1 or any(CHECKS[c.base].needs_grader for c in job.checks):
            return False
        store = self.recordings.store(job.suite)
        request = job.requests[0]
        if isinstance(store, RecordingError):
            return False
        replayed = self.recordings.replayed(store, job.name, request, request.sample)
        if replayed is None:
            return False
        self.results.outcomes[(job.key, request.sample)] = replayed
        self._finished.add(job.key)
        return True

    def _client(self, settings: EngineSettings) -> openai.AsyncOpenAI:
        """The client from a pytest_grokeval_make_client implementation, else the default."""
        made = None if self._make_client is None else client_from_hook(self._make_client, settings)
        return made if made is not None else default_client(settings)

    def _engine_settings(self) -> EngineSettings:
        shared = {name: getattr(self.settings, name) for name in _ENGINE_OPTIONS}
        return EngineSettings(api_key=self.settings.api_key or "", **shared)

    async def _job(self, engine: Engine, job: Job) -> None:
        """Sample in waves until the pass rate is decided; grade each sample as it arrives."""
        plan = Plan(len(job.requests), job.min_pass_rate)
        passes = failures = sent = 0
        while (wave := self._wave(plan, passes, failures, sent)) > 0:
            batch = job.requests[sent : sent + wave]
            sent += wave
            if wave == 1:
                # Most jobs are one sample: awaited here, without a task of its own each.
                verdicts = [await self._sample(engine, job, batch[0])]
            else:
                verdicts = await asyncio.gather(*(self._sample(engine, job, r) for r in batch))
            if None in verdicts:
                break  # a request or a grader failed: the item reports it; no more samples
            passes += sum(1 for v in verdicts if v)
            failures += sum(1 for v in verdicts if not v)
        self._finished.add(job.key)

    def _wave(self, plan: Plan, passes: int, failures: int, sent: int) -> int:
        # A batch answers in minutes to hours: every sample goes in at once, no early stopping.
        if self.settings.batch:
            return plan.repeat - sent
        return plan.next_wave(passes, failures)

    async def _sample(self, engine: Engine, job: Job, request: ChatRequest) -> bool | None:
        """Fetch and check one sample: True or False, or None when it could not be judged."""
        outcome = await self._obtain(engine, job.key, job.name, job.suite, request)
        results = self.results
        results.outcomes[(job.key, request.sample)] = outcome
        if isinstance(outcome, FetchError):
            return None
        # A response without text fails the judge without asking it (see run_checks).
        graders = [c for c in job.checks if CHECKS[c.base].needs_grader and outcome.has_text]
        graded = await asyncio.gather(
            *(self._grade(engine, job, request.sample, check, outcome) for check in graders)
        ) if graders else []
        try:
            checked = run_checks(job.checks, outcome, dict(graded))
        except JudgeError as exc:
            results.checked[(job.key, request.sample)] = exc
            return None
        results.checked[(job.key, request.sample)] = checked
        return all(result.passed for result in checked)

    async def _grade(
        self, engine: Engine, job: Job, sample: int, check: Check, response: Completion
    ) -> tuple[str, Outcome]:
        """The judge's reply about one sample: sent as soon as the sample has arrived."""
        model = self.settings.judge_model or self.settings.model
        request = grader_request(parse_rubric(check.arg), response, model)
        if self.settings.api != request.api:
            request = dataclasses.replace(request, api=self.settings.api)
        name = grader_name(job.name, check)
        graded = await self._obtain(engine, job.key, name, job.suite, request, sample)
        self.results.graded[(job.key, sample, check.name)] = graded
        if isinstance(graded, Completion) and not graded.replayed:
            self._count_grader(request, graded)
        return check.name, graded

    def _count_grader(self, request: ChatRequest, reply: Completion) -> None:
        if request.fingerprint in self._judged:
            return  # one call answered several items
        self._judged.add(request.fingerprint)
        counts = self.summary.counts
        counts.judge_calls += 1
        if reply.usage is not None:
            counts.judge_prompt_tokens += reply.usage.prompt_tokens
            counts.judge_output_tokens += reply.usage.output_tokens
        if reply.cost_usd is not None:
            counts.judge_cost_usd += reply.cost_usd
        if reply.usage is None or reply.cost_usd is None:
            counts.judge_unknown += 1

    async def _obtain(
        self,
        engine: Engine,
        key: str,
        name: str,
        suite: Path,
        request: ChatRequest,
        sample: int | None = None,
    ) -> Outcome:
        """Replay when the mode allows and a recording matches; else send and record."""
        slot = request.sample if sample is None else sample
        recordings = self.recordings
        store = recordings.store(suite)
        if isinstance(store, RecordingError):
            return FetchError(str(store), kind="recording")
        replayed = recordings.replayed(store, name, request, slot)
        if replayed is not None:
            return replayed
        if self.settings.record == "none" or self.settings.api_key is None:
            return recordings.miss(store, name, request, slot, suite)
        # Recorded when the engine receives it, not when this coroutine resumes: after Ctrl-C
        # it may never resume, and every response received must still be kept.
        waiter = (store, name, slot)
        self._waiting.setdefault(request.fingerprint, []).append(waiter)
        try:
            outcome = self._safe(await engine.fetch(request))
        except (FatalAPIError, ClientHookError):
            # The client is made at the first send when no catalog GET made it before (the
            # catalog was cached): the hook's error still stops the run.
            raise
        except Exception as exc:
            # A reply no parser survives (nesting too deep for the SDK's JSON reader, ...)
            # fails the items that asked for it, and nothing else.
            self._waiting.pop(request.fingerprint, None)
            message = self.redact(f"unreadable response: {type(exc).__name__}: {exc}"[:2000])
            return FetchError(message, kind="malformed")
        pending = self._waiting.get(request.fingerprint, [])
        if waiter in pending:  # the request had been answered before this item asked for it
            pending.remove(waiter)
            if isinstance(outcome, Completion):
                recordings.record(store, name, request, slot, outcome)
        return outcome

    def _received(self, request: ChatRequest, outcome: Outcome) -> None:
        """The engine's result callback: record the response for every item that asked."""
        outcome = self._safe(outcome)
        for store, name, slot in self._waiting.pop(request.fingerprint, []):
            if isinstance(outcome, Completion):
                self.recordings.record(store, name, request, slot, outcome)

    def _safe(self, outcome: Outcome) -> Outcome:
        """An outcome fit to check, record and print: no lone surrogates, no secrets."""
        if isinstance(outcome, FetchError):
            message = clean_text(self.redact(outcome.message))
            return outcome if message == outcome.message else dataclasses.replace(
                outcome, message=message
            )
        text, model = clean_text(outcome.text), clean_text(outcome.model)
        if (text, model) == (outcome.text, outcome.model):
            return outcome
        return dataclasses.replace(outcome, text=text, model=model)

    def _to_send(self, jobs: Sequence[Job]) -> list[ChatRequest]:
        """The sample requests replay will not answer: what the run plans to send."""
        if self.settings.record == "none" or self.settings.api_key is None:
            return []
        return [
            request
            for job in jobs
            for request in job.requests
            if not self.recordings.would_replay(job.suite, job.name, request)
        ]

    def _unfinished(self, jobs: Sequence[Job]) -> None:
        """Items whose sampling was cut short by a fatal error or Ctrl-C say so."""
        stopped = FetchError("not sent: the run stopped before this request", kind="interrupted")
        for job in jobs:
            if job.key not in self._finished:
                for request in job.requests:
                    self.results.outcomes.setdefault((job.key, request.sample), stopped)


__all__ = [
    "BudgetExceeded",
    "CatalogError",
    "FatalAPIError",
    "GrokRun",
    "Job",
    "grader_name",
    "run_sync",
]
