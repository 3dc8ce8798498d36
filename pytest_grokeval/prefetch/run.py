"""One run's state and its prefetch: replay, send, grade and record, item by item."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pytest_grokeval.checks.judge import JUDGE_PARAMS, JudgeError, grader_request, parse_rubric
from pytest_grokeval.checks.registry import CHECKS, Check, CheckResult, run_checks
from pytest_grokeval.data import ChatRequest, Completion, FetchError, Outcome
from pytest_grokeval.engine.budgets import estimate_request_cost
from pytest_grokeval.engine.catalog import (
    Catalog,
    CatalogError,
    cache_key,
    cached_listing,
    check_requests,
)
from pytest_grokeval.engine.engine import Engine, EngineSettings, EngineStats, default_client
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.engine.pricing import PRICES_AS_OF, price_for
from pytest_grokeval.jsonfile import clean_text
from pytest_grokeval.options import Settings
from pytest_grokeval.prefetch.sampling import Plan
from pytest_grokeval.prefetch.stopping import sigterm_as_interrupt
from pytest_grokeval.recordings.store import RecordingError, RecordingStore, recordings_path

if TYPE_CHECKING:
    import openai
    import pytest

    from pytest_grokeval.report.terminal import Progress

    # config.hook.pytest_grokeval_make_client: called with settings=..., returns a client or None.
    ClientHook = Callable[..., openai.AsyncOpenAI | None]

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """What one test needs fetched: its samples, and the checks that decide when to stop."""

    key: str  # the item's node id
    name: str  # the item's name inside its file: the recording key
    suite: Path  # the file whose recordings hold it
    requests: tuple[ChatRequest, ...]
    checks: tuple[Check, ...] = ()
    min_pass_rate: float = 1.0


def grader_name(name: str, check: Check) -> str:
    """The recording key of a judge's replies about one item: 'case judge'."""
    return f"{name} {check.name}"


@dataclass
class Counts:
    """What the summary reports about requests."""

    replayed: int = 0
    missing: int = 0
    deduplicated: int = 0
    prefetch_seconds: float = 0.0
    drift: list[str] = field(default_factory=list)
    # Recordings that could not be saved, or responses not journaled: file and reason.
    unsaved: list[str] = field(default_factory=list)
    # Grader calls of judge checks sent by this run (also inside the engine's totals).
    judge_calls: int = 0
    judge_prompt_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float = 0.0
    judge_unknown: int = 0  # grader replies without usage or cost
    warnings: list[str] = field(default_factory=list)


class GrokRun:
    """Lives for one pytest session: created in pytest_configure, read until the summary."""

    def __init__(
        self, settings: Settings, rootpath: Path, make_client: ClientHook | None = None
    ) -> None:
        self.settings = settings
        self.rootpath = rootpath
        self._make_client = make_client
        self.redact = settings.redactor
        # Sample outcomes by (item key, sample), and grader replies by (key, sample, check).
        self.outcomes: dict[tuple[str, int], Outcome] = {}
        self.graded: dict[tuple[str, int, str], Outcome] = {}
        # Check results of the samples the prefetch checked to decide when to stop sampling,
        # or the judge problem that left one undecided: items show these, never re-run them.
        self.checked: dict[tuple[str, int], list[CheckResult] | JudgeError] = {}
        self._adopted: dict[tuple[str, int], tuple[str | None, list[Any]]] = {}
        self.counts = Counts()
        self.engine_stats = EngineStats()
        # Per suite file: every recording key its collected items may use, and item names.
        self.collected: dict[Path, set[tuple[str, int]]] = {}
        self.collected_items: dict[Path, set[str]] = {}
        self.selected: dict[Path, set[str]] = {}
        self.pruned: list[str] = []
        self.marks: set[str] = set()  # custom marker names already registered
        self.items = 0
        self.prefetched = False
        self.leader = False  # under xdist: this worker fetched for all of them
        self.fatal: str | None = None
        # pytest's config.cache: the model catalog, and the ids batch mode keeps.
        self.cache: pytest.Cache | None = None
        self._stores: dict[Path, RecordingStore | RecordingError] = {}
        self._finished: set[str] = set()
        self._waiting: dict[str, list[tuple[RecordingStore, str, int]]] = {}
        self._judged: set[str] = set()

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.rootpath))
        except ValueError:
            return str(path)

    def store(self, suite: Path) -> RecordingStore | RecordingError:
        """The recordings of a suite file, loaded once; a broken file is kept as its error."""
        if suite not in self._stores:
            try:
                self._stores[suite] = RecordingStore.load(suite, self.redact)
            except RecordingError as exc:
                # Named as the user sees it, relative to the rootdir.
                where = str(recordings_path(suite))
                self._stores[suite] = RecordingError(
                    str(exc).replace(where, self.display(Path(where)), 1)
                )
        return self._stores[suite]

    def stores(self) -> dict[Path, RecordingStore]:
        return {p: s for p, s in self._stores.items() if isinstance(s, RecordingStore)}

    def outcome(self, key: str, sample: int) -> Outcome:
        found = self.outcomes.get((key, sample))
        if found is None:
            return FetchError("no response was fetched for this item", kind="missing")
        return found

    def samples(self, key: str, requests: Sequence[ChatRequest]) -> list[Outcome]:
        """The outcomes an item got, in order; early stopping leaves the rest unfetched."""
        found = []
        for request in requests:
            outcome = self.outcomes.get((key, request.sample))
            if outcome is None:
                break
            found.append(outcome)
        return found or [self.outcome(key, 0)]

    def grades(self, key: str, sample: int, checks: Sequence[Check]) -> dict[str, Outcome]:
        return {
            c.name: self.graded[(key, sample, c.name)]
            for c in checks
            if (key, sample, c.name) in self.graded
        }

    def checked_json(self) -> list[list[Any]]:
        """The kept check results as JSON rows, for xdist followers: [key, sample, judge
        problem or None, [[check name, passed, expected, got], ...] or None]."""
        rows: list[list[Any]] = []
        for (key, sample), got in self.checked.items():
            if isinstance(got, JudgeError):
                rows.append([key, sample, str(got), None])
            else:
                results = [[r.check.name, r.passed, r.expected, r.got] for r in got]
                rows.append([key, sample, None, results])
        return rows

    def adopt_checked(self, rows: Sequence[list[Any]]) -> None:
        """Keep the fetching worker's check results (checked_json rows), so that no check
        runs twice under xdist; kept() matches them to the item's checks."""
        for key, sample, problem, results in rows:
            self._adopted[(key, sample)] = (problem, results)

    def kept(
        self, key: str, sample: int, checks: Sequence[Check]
    ) -> list[CheckResult] | JudgeError | None:
        """The results the prefetch kept for one sample, or None when it checked none."""
        if (key, sample) in self.checked:
            return self.checked[(key, sample)]
        adopted = self._adopted.get((key, sample))
        if adopted is None:
            return None
        problem, results = adopted
        if problem is not None:
            return JudgeError(problem)
        by_name = {check.name: check for check in checks}
        if [row[0] for row in results] != [check.name for check in checks]:
            return None  # another worker's checks differ: check here instead
        return [
            CheckResult(by_name[name], passed, expected, got)
            for name, passed, expected, got in results
        ]

    def prefetch(self, jobs: Sequence[Job], progress: Progress | None) -> None:
        """Replay what recordings hold, send the rest at once, record what came back."""
        started = time.monotonic()
        if self.settings.batch_cancel:
            self._cancel_batches()
        engine = (
            self._batch_engine(jobs, progress)
            if self.settings.batch
            else Engine(
                self._engine_settings(),
                on_result=self._received,
                on_progress=progress.update if progress else None,
                client_factory=self._client,
            )
        )
        try:
            to_send = self._to_send(jobs)
            self._check_budget(to_send, self._grader_models(jobs) if to_send else set())
            engine.expect(len({r.fingerprint for r in to_send}))
            with sigterm_as_interrupt():
                run_sync(lambda: self._run(engine, jobs, to_send))
        finally:
            self.engine_stats = engine.stats
            self.counts.deduplicated = engine.stats.deduplicated
            if progress is not None and engine.stats.total:
                progress.finish(engine.stats)
            self._unfinished(jobs)
            self.counts.prefetch_seconds = time.monotonic() - started
            self.prefetched = True
            if self.settings.record == "rewrite":
                self.pruned = self._prune()
            self.save()

    async def _run(
        self, engine: Engine, jobs: Sequence[Job], to_send: Sequence[ChatRequest]
    ) -> None:
        # Most jobs of a replay are one recorded sample: answered here, without a task each.
        pending = [job for job in jobs if not self._replay_now(job)]
        async with engine:
            if to_send:
                await self._check_catalog(engine, jobs, to_send)
            await asyncio.gather(*(self._job(engine, job) for job in pending))

    async def _check_catalog(
        self, engine: Engine, jobs: Sequence[Job], to_send: Sequence[ChatRequest]
    ) -> None:
        """Refuse, before anything is sent, what the model catalog says xAI would refuse."""
        catalog = await self._catalog(engine)
        if catalog is None:
            return
        engine.default_efforts = catalog.default_efforts()
        live = {request.fingerprint for request in to_send}
        wanted: dict[str, list[ChatRequest]] = {}
        for job in jobs:
            requests = [r for r in job.requests if r.fingerprint in live]
            if not requests:
                continue
            wanted[job.key] = requests
            graders = [c for c in job.checks if CHECKS[c.base].needs_grader]
            models = {self._grader_model(c) for c in graders}
            if models:
                # The grader's prompt is fixed; only its model and params can be refused.
                wanted[f"{job.key} (judge)"] = [
                    ChatRequest(model=m, messages=(), params=dict(JUDGE_PARAMS))
                    for m in sorted(models)
                ]
        check_requests(catalog, wanted)

    def _grader_model(self, check: Check) -> str:
        rubric = parse_rubric(check.arg)
        return rubric.model or self.settings.judge_model or self.settings.model

    async def _catalog(self, engine: Engine) -> Catalog | None:
        """The API's model listing: from pytest's cache if under a day old, else fetched once.

        A server without ``/models`` (many OpenAI-compatible proxies) gives a warning, not an
        error: the requests go out unchecked.
        """
        import openai

        key = cache_key(self.settings.base_url)
        now = time.time()
        listing: Any = cached_listing(self.cache.get(key, None), now) if self.cache else None
        fresh = listing is None
        where = f"GET /models at {urlsplit(self.settings.base_url).hostname}"
        if fresh:
            try:
                listing = await engine.get_json("/models")
            except openai.APIStatusError as exc:
                return self._no_catalog(where, f"HTTP {exc.status_code}")
            except openai.OpenAIError as exc:
                return self._no_catalog(where, f"{exc.__cause__ or exc}")
        try:
            catalog = Catalog.from_listing(listing)
        except ValueError as exc:
            return self._no_catalog(where, str(exc))
        if fresh and self.cache is not None:
            self.cache.set(key, {"fetched": now, "listing": listing})
        return catalog

    def _no_catalog(self, where: str, reason: str) -> Catalog | None:
        """Warn that nothing was checked; None, so that the requests go out unchecked."""
        self.counts.warnings.append(
            f"the model catalog ({where}) could not be read ({reason}); models, reasoning "
            "efforts and parameters were not checked before sending"
        )
        return None

    def _replay_now(self, job: Job) -> bool:
        """Finish a one-sample job that needs no grader from its recording, if it has one."""
        if len(job.requests) != 1 or any(CHECKS[c.base].needs_grader for c in job.checks):
            return False
        store = self.store(job.suite)
        request = job.requests[0]
        if isinstance(store, RecordingError):
            return False
        replayed = self._replayed(store, job.name, request, request.sample)
        if replayed is None:
            return False
        self.outcomes[(job.key, request.sample)] = replayed
        self._finished.add(job.key)
        return True

    def _replayed(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int
    ) -> Completion | None:
        """The recorded answer when the mode replays and the request is unchanged."""
        if self.settings.record not in ("none", "new"):
            return None
        found = store.lookup(name, request, slot)
        if found is not None:
            self.counts.replayed += 1
        return found

    def _client(self, settings: EngineSettings) -> openai.AsyncOpenAI:
        """The client from a pytest_grokeval_make_client implementation, else the default."""
        made = None if self._make_client is None else self._make_client(settings=settings)
        return made if made is not None else default_client(settings)

    def _engine_settings(self) -> EngineSettings:
        s = self.settings
        return EngineSettings(
            base_url=s.base_url,
            api_key=s.api_key or "",
            max_concurrent=s.max_concurrent,
            timeout=s.timeout,
            retries=s.retries,
            rpm=s.rpm,
            tpm=s.tpm,
            max_cost=s.max_cost,
            backoff_base=s.backoff_base,
            prices=s.prices,
        )

    async def _job(self, engine: Engine, job: Job) -> None:
        """Sample in waves until the pass rate is decided; grade each sample as it arrives."""
        plan = Plan(len(job.requests), job.min_pass_rate)
        passes = failures = sent = 0
        while (wave := self._wave(plan, passes, failures, sent)) > 0:
            batch = job.requests[sent : sent + wave]
            sent += wave
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
        self.outcomes[(job.key, request.sample)] = outcome
        if isinstance(outcome, FetchError):
            return None
        # A response without text fails the judge without asking it (see run_checks).
        graders = [c for c in job.checks if CHECKS[c.base].needs_grader and outcome.has_text]
        graded = await asyncio.gather(
            *(self._grade(engine, job, request.sample, check, outcome) for check in graders)
        )
        try:
            results = run_checks(job.checks, outcome, dict(graded))
        except JudgeError as exc:
            self.checked[(job.key, request.sample)] = exc
            return None
        self.checked[(job.key, request.sample)] = results
        return all(result.passed for result in results)

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
        self.graded[(job.key, sample, check.name)] = graded
        if isinstance(graded, Completion) and not graded.replayed:
            self._count_grader(request, graded)
        return check.name, graded

    def _count_grader(self, request: ChatRequest, reply: Completion) -> None:
        if request.fingerprint in self._judged:
            return  # one call answered several items
        self._judged.add(request.fingerprint)
        counts = self.counts
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
        mode = self.settings.record
        store = self.store(suite)
        if isinstance(store, RecordingError):
            return FetchError(str(store), kind="recording")
        replayed = self._replayed(store, name, request, slot)
        if replayed is not None:
            return replayed
        if mode == "none" or self.settings.api_key is None:
            return self._miss(store, name, request, slot, suite)
        # Recorded when the engine receives it, not when this coroutine resumes: after Ctrl-C
        # it may never resume, and every response received must still be kept.
        waiter = (store, name, slot)
        self._waiting.setdefault(request.fingerprint, []).append(waiter)
        try:
            outcome = self._safe(await engine.fetch(request))
        except FatalAPIError:
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
                self._record(store, name, request, slot, outcome)
        return outcome

    def _received(self, request: ChatRequest, outcome: Outcome) -> None:
        """The engine's result callback: record the response for every item that asked."""
        outcome = self._safe(outcome)
        for store, name, slot in self._waiting.pop(request.fingerprint, []):
            if isinstance(outcome, Completion):
                self._record(store, name, request, slot, outcome)

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

    # -- batch mode (--grok-batch): the same flows, answered by engine/batch.py -----------------

    def _batch_engine(self, jobs: Sequence[Job], progress: Progress | None) -> Engine:
        """The batch engine for this run, once its models are known to be batchable."""
        from pytest_grokeval.engine import batch, batchstore

        to_send = self._to_send(jobs)
        batch.refuse_responses(to_send)
        models = {r.model for r in to_send}
        if any(CHECKS[c.base].needs_grader for job in jobs for c in job.checks):
            models.add(self.settings.judge_model or self.settings.model)
        batch.refuse_unbatchable(models)
        return batch.BatchEngine(
            self._engine_settings(),
            key=batchstore.request_set_key(
                (r for job in jobs for r in job.requests), self.settings.base_url
            ),
            cache=self.cache,
            wait=self.settings.batch_wait,
            on_result=self._received,
            on_line=progress.show if progress else None,
            say=progress.say if progress else _silent,
            client_factory=self._client,
            resume=batch.resume_hint(self.settings.record),
        )

    def _cancel_batches(self) -> None:
        """--grok-batch-cancel: cancel what earlier batch runs left, then stop the run."""
        from pytest_grokeval.engine import batch, batchstore

        client = self._client(self._engine_settings())
        cancelled, gone, bad = run_sync(lambda: batchstore.cancel_stored(self.cache, client))
        done = "; ".join(
            ([f"cancelled batch {', '.join(cancelled)}"] if cancelled else [])
            + [f"batch {g} is gone; forgetting it" for g in gone]
            + [f"ignored a malformed cache record ({b})" for b in bad]
        ) or "pytest's cache names no batch of an earlier --grok-batch run"
        raise batch.BatchStop(f"--grok-batch-cancel: {done}; nothing else was sent")

    def _to_send(self, jobs: Sequence[Job]) -> list[ChatRequest]:
        """The sample requests replay will not answer: what the run plans to send."""
        if self.settings.record == "none" or self.settings.api_key is None:
            return []
        replaying = self.settings.record == "new"
        planned = []
        for job in jobs:
            store = self.store(job.suite)
            for request in job.requests:
                if not (
                    replaying
                    and isinstance(store, RecordingStore)
                    and store.lookup(job.name, request, request.sample) is not None
                ):
                    planned.append(request)
        return planned

    def _miss(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int, suite: Path
    ) -> FetchError:
        self.counts.missing += 1
        display = self.display(recordings_path(suite))
        message = store.explain_miss(name, request, slot, display)
        if self.settings.record == "none" and self.settings.record_explicit:
            return FetchError(message, kind="missing")
        return FetchError(
            f"{message} (replay only: {self.settings.api_key_env} is not set)", kind="missing"
        )

    def _grader_models(self, jobs: Sequence[Job]) -> set[str]:
        """The models judge checks would call, for the budget's price check."""
        default = self.settings.judge_model or self.settings.model
        return {
            parse_rubric(check.arg).model or default
            for job in jobs
            for check in job.checks
            if CHECKS[check.base].needs_grader
        }

    def _check_budget(self, requests: Sequence[ChatRequest], graders: set[str]) -> None:
        limit = self.settings.max_cost
        if limit is None or not requests:
            return
        prices = self.settings.prices
        unique = {r.fingerprint: r for r in requests}
        models = {r.model for r in unique.values()} | graders
        unpriced = sorted(m for m in models if price_for(m, prices) is None)
        if unpriced:
            names = ", ".join(repr(m) for m in unpriced)
            raise BudgetExceeded(
                f"--grok-max-cost needs a price for every model, and {names} "
                f"{'has' if len(unpriced) == 1 else 'have'} none (built-in prices as of "
                f"{PRICES_AS_OF}); nothing was sent. Add it to the ini option grok_prices, "
                "e.g. grok_prices = " + f"{unpriced[0]}: 2.00 0.50 6.00"
            )
        estimate = sum(estimate_request_cost(r, prices) or 0.0 for r in unique.values())
        if estimate > limit:
            count = len(unique)
            raise BudgetExceeded(
                f"the estimated cost of {count} requests is ${estimate:.4f}, over "
                f"--grok-max-cost ${limit:g}; nothing was sent. "
                "Raise the limit, lower max_tokens, or select fewer cases (-k)"
            )

    def _unfinished(self, jobs: Sequence[Job]) -> None:
        """Items whose sampling was cut short by a fatal error or Ctrl-C say so."""
        stopped = FetchError("not sent: the run stopped before this request", kind="interrupted")
        for job in jobs:
            if job.key not in self._finished:
                for request in job.requests:
                    self.outcomes.setdefault((job.key, request.sample), stopped)

    def _record(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int, got: Completion
    ) -> None:
        before = store.recorded_model(name, slot)
        if before and before != got.model:
            self.counts.drift.append(
                f"{name}: recorded answer came from {before!r}, now from {got.model!r}"
            )
        elif got.model and got.model != request.model:
            self.counts.drift.append(
                f"{name}: asked for {request.model!r}, {got.model!r} answered"
            )
        store.put(name, request, got, slot)

    def _prune(self) -> list[str]:
        """Under rewrite, drop entries that no collected item uses; return what was dropped."""
        dropped: list[str] = []
        for suite, keys in self.collected.items():
            store = self.store(suite)
            if isinstance(store, RecordingError):
                continue
            for key in sorted(store.keys() - keys):
                store.drop(key)
                dropped.append(f"{self.display(suite)}::{key[0]} (sample {key[1]})")
        return dropped

    def unused(self) -> list[str]:
        """Recorded entries no collected item uses, in files whose every item was selected."""
        found: list[str] = []
        for suite, keys in self.collected.items():
            if self.selected.get(suite, set()) != self.collected_items.get(suite, set()):
                continue
            store = self.store(suite)
            if isinstance(store, RecordingError):
                continue
            for name, sample in sorted(store.keys() - keys):
                which = f" sample {sample}" if sample else ""
                found.append(f"{self.display(recordings_path(suite))}: {name!r}{which}")
        return found

    def save(self) -> None:
        """Write each suite's recordings; one that cannot be written is noted, not raised."""
        for suite, store in self.stores().items():
            where = self.display(recordings_path(suite))
            if store.journal_problem is not None:
                self.counts.unsaved.append(f"{where}: not saved as it arrived: "
                                           f"{store.journal_problem}")
            try:
                store.save()
            except (OSError, RecordingError) as exc:
                reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
                self.counts.unsaved.append(f"{where}: cannot save recordings: {reason}")


def _silent(text: str) -> None:
    """Where batch messages go without a terminal (an xdist worker): pytest's cache has them."""


class BudgetExceeded(Exception):
    """The run's estimated cost is over --grok-max-cost: nothing is sent."""


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


__all__ = ["BudgetExceeded", "CatalogError", "FatalAPIError", "GrokRun", "Job", "run_sync"]
