"""One run's state: which requests items need, replay, the engine call, and recording."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .data import ChatRequest, Completion, FetchError, Outcome
from .engine import Engine, EngineSettings, EngineStats, FatalAPIError, estimate_request_cost
from .options import Settings
from .recordings import RecordingError, RecordingStore, recordings_path

if TYPE_CHECKING:
    from .report import Progress

T = TypeVar("T")


@dataclass(frozen=True)
class Need:
    """One request of one item: the unit that is replayed, sent or recorded."""

    key: str  # the item's node id
    name: str  # the item's name inside its suite file (the recording key)
    suite: Path | None  # None for requests that are not recorded per suite file
    request: ChatRequest


@dataclass
class Counts:
    """What the summary reports about requests."""

    needed: int = 0
    replayed: int = 0
    missing: int = 0
    deduplicated: int = 0
    prefetch_seconds: float = 0.0
    drift: list[str] = field(default_factory=list)


class GrokRun:
    """Lives for one pytest session: created in pytest_configure, read until the summary."""

    def __init__(self, settings: Settings, rootpath: Path) -> None:
        self.settings = settings
        self.rootpath = rootpath
        self.outcomes: dict[tuple[str, int], Outcome] = {}
        self.counts = Counts()
        self.engine_stats = EngineStats()
        # Recording keys (item name, sample) of every collected item, and names selected, per file.
        self.collected: dict[Path, set[tuple[str, int]]] = {}
        self.selected: dict[Path, set[str]] = {}
        self.pruned: list[str] = []
        self.marks: set[str] = set()  # custom marker names already registered
        self.items = 0
        self._stores: dict[Path, RecordingStore | RecordingError] = {}
        self.prefetched = False
        self.leader = False  # under xdist: this worker fetched for all of them
        self.fatal: str | None = None

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.rootpath))
        except ValueError:
            return str(path)

    def store(self, suite: Path) -> RecordingStore | RecordingError:
        """The recordings of a suite file, loaded once; a broken file is kept as its error."""
        if suite not in self._stores:
            try:
                self._stores[suite] = RecordingStore.load(suite)
            except RecordingError as exc:
                self._stores[suite] = exc
        return self._stores[suite]

    def stores(self) -> dict[Path, RecordingStore]:
        return {p: s for p, s in self._stores.items() if isinstance(s, RecordingStore)}

    def outcome(self, key: str, sample: int) -> Outcome:
        found = self.outcomes.get((key, sample))
        if found is None:
            return FetchError("no response was fetched for this item", kind="missing")
        return found

    def estimate_cost(self, needs: Sequence[Need]) -> float:
        unique = {n.request.fingerprint: n.request for n in needs}
        return sum(estimate_request_cost(r) for r in unique.values())

    def prefetch(self, needs: Sequence[Need], progress: Progress | None) -> None:
        """Replay what recordings hold, send the rest at once, record what came back."""
        started = time.monotonic()
        mode = self.settings.record
        to_send: list[Need] = []
        for need in needs:
            self.counts.needed += 1
            outcome = self._replay(need) if mode in ("none", "new") else None
            if outcome is not None:
                self.outcomes[(need.key, need.request.sample)] = outcome
            elif mode == "none" or self.settings.api_key is None:
                self.outcomes[(need.key, need.request.sample)] = self._miss(need)
            else:
                to_send.append(need)
        self.counts.deduplicated = len(to_send) - len({n.request.fingerprint for n in to_send})
        try:
            if to_send:
                self._check_budget(to_send)
                self._send(to_send, progress)
        finally:
            self.counts.prefetch_seconds = time.monotonic() - started
            self.prefetched = True
            if mode == "rewrite":
                self.pruned = self._prune()
            self.save()

    def _replay(self, need: Need) -> Outcome | None:
        if need.suite is None:
            return None
        store = self.store(need.suite)
        if isinstance(store, RecordingError):
            return FetchError(str(store), kind="recording")
        completion = store.lookup(need.name, need.request)
        if completion is not None:
            self.counts.replayed += 1
        return completion

    def _miss(self, need: Need) -> FetchError:
        self.counts.missing += 1
        if need.suite is None:
            return FetchError(
                f"no API key in {self.settings.api_key_env} and nothing recorded", kind="missing"
            )
        store = self.store(need.suite)
        if isinstance(store, RecordingError):
            return FetchError(str(store), kind="recording")
        display = self.display(recordings_path(need.suite))
        message = store.explain_miss(need.name, need.request, display)
        if self.settings.record == "none" and self.settings.record_explicit:
            return FetchError(message, kind="missing")
        return FetchError(
            f"{message} (replay only: {self.settings.api_key_env} is not set)", kind="missing"
        )

    def _check_budget(self, needs: Sequence[Need]) -> None:
        limit = self.settings.max_cost
        if limit is None:
            return
        estimate = self.estimate_cost(needs)
        if estimate > limit:
            raise BudgetExceeded(
                f"the estimated cost of {len({n.request.fingerprint for n in needs})} requests "
                f"is ${estimate:.4f}, over --grok-max-cost ${limit:g}; nothing was sent. "
                "Raise the limit, lower max_tokens, or select fewer cases (-k)"
            )

    def _send(self, needs: Sequence[Need], progress: Progress | None) -> None:
        by_fingerprint: dict[str, list[Need]] = {}
        for need in needs:
            by_fingerprint.setdefault(need.request.fingerprint, []).append(need)

        def on_result(request: ChatRequest, outcome: Outcome) -> None:
            for need in by_fingerprint[request.fingerprint]:
                self.outcomes[(need.key, need.request.sample)] = outcome
                if isinstance(outcome, Completion) and need.suite is not None:
                    self._record(need, outcome)

        s = self.settings
        engine = Engine(
            EngineSettings(
                base_url=s.base_url,
                api_key=s.api_key or "",
                max_concurrent=s.max_concurrent,
                timeout=s.timeout,
                retries=s.retries,
                rpm=s.rpm,
                tpm=s.tpm,
                max_cost=s.max_cost,
                backoff_base=s.backoff_base,
            ),
            on_result=on_result,
            on_progress=progress.update if progress else None,
        )
        try:
            run_sync(lambda: engine.run([n.request for n in needs]))
        finally:
            self.engine_stats = engine.stats
            if progress is not None:
                progress.finish(engine.stats)
        self._unsent(needs)

    def _unsent(self, needs: Sequence[Need]) -> None:
        for need in needs:
            self.outcomes.setdefault(
                (need.key, need.request.sample),
                FetchError("not sent: the run stopped before this request", kind="interrupted"),
            )

    def _record(self, need: Need, completion: Completion) -> None:
        assert need.suite is not None
        store = self.store(need.suite)
        if isinstance(store, RecordingError):
            return
        before = store.recorded_model(need.name, need.request.sample)
        if before and before != completion.model:
            self.counts.drift.append(
                f"{need.name}: recorded answer came from {before!r}, now from {completion.model!r}"
            )
        elif completion.model and completion.model != need.request.model:
            self.counts.drift.append(
                f"{need.name}: asked for {need.request.model!r}, {completion.model!r} answered"
            )
        store.put(need.name, need.request, completion)

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
            if self.selected.get(suite, set()) != {name for name, _ in keys}:
                continue
            store = self.store(suite)
            if isinstance(store, RecordingError):
                continue
            for name, sample in sorted(store.keys() - keys):
                which = f" sample {sample}" if sample else ""
                found.append(f"{self.display(recordings_path(suite))}: {name!r}{which}")
        return found

    def save(self) -> None:
        for store in self.stores().values():
            store.save()


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


__all__ = ["BudgetExceeded", "FatalAPIError", "GrokRun", "Need", "run_sync"]
