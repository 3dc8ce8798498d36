"""pytest-xdist: one worker fetches for all, so the concurrency limit holds for the whole run.

Every worker collects the full suite and sees every selected item before its loop starts, but
none knows which items it will run. Following pytest-xdist's recipe for session work done
once, the workers take a file lock in a folder the controller shares with them: the first one
fetches every request (one process, one semaphore) while holding it and publishes the outcomes
before letting go; the others wait on the lock, then read them. Only that worker writes
recordings. The operating system releases the lock of a worker that dies, so a worker that
gets it and finds the fetcher's claim but no outcomes knows the fetcher died, with no
heartbeat to watch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_grokeval.data import Completion, FetchError, Outcome
from pytest_grokeval.engine.engine import EngineStats
from pytest_grokeval.jsonfile import dumps
from pytest_grokeval.prefetch.run import GrokRun
from pytest_grokeval.prefetch.stopping import sigterm_as_interrupt
from pytest_grokeval.report.terminal import summary_lines
from pytest_grokeval.state import RUN_KEY, Counts

SHARED_DIR_KEY = "grokeval_shared_dir"
CONTROLLER_PID_KEY = "grokeval_controller_pid"
# How often the fetching worker looks whether its controller still runs, in seconds.
ORPHAN_POLL = 0.1
CONTROLLER = "grokeval-xdist-controller"
OUTPUT_KEY = "grokeval"
LOCK = "fetch.lock"
LEADER = "leader"  # the fetching worker's pid, written once it holds the lock
OUTCOMES = "outcomes.json"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def shared_dir(config: pytest.Config) -> Path | None:
    value = getattr(config, "workerinput", {}).get(SHARED_DIR_KEY)
    return None if value is None else Path(value)


def register(config: pytest.Config) -> None:
    """Add the hooks of this process's role in an xdist run, if it has one."""
    if is_worker(config):
        config.pluginmanager.register(WorkerHooks(), "grokeval-xdist-worker")
    elif config.pluginmanager.hasplugin("xdist") and config.getoption("dist") != "no":
        config.pluginmanager.register(ControllerHooks(), CONTROLLER)


class ControllerHooks:
    """Registered on the xdist controller only: shares a folder and gathers the leader's data."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="grokeval-xdist-"))
        self.outputs: list[dict[str, Any]] = []
        self.signals = contextlib.ExitStack()

    def pytest_sessionstart(self) -> None:
        """SIGTERM (kill PID, a CI runner) stops the controller as Ctrl-C does, not at once.

        Dying at once would orphan the fetching worker, which would go on sending.
        """
        self.signals.enter_context(sigterm_as_interrupt())

    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker where the run's shared folder is and whom to outlive."""
        node.workerinput[SHARED_DIR_KEY] = str(self.directory)
        node.workerinput[CONTROLLER_PID_KEY] = os.getpid()

    def pytest_keyboard_interrupt(self) -> None:
        """Stop the fetching worker now: xdist itself interrupts busy workers only after 5 s.

        The worker takes SIGTERM as Ctrl-C, so it keeps and saves every response it received.
        """
        with contextlib.suppress(OSError, ValueError):
            if not (self.directory / OUTCOMES).exists():
                os.kill(int((self.directory / LEADER).read_text(encoding="utf-8")), signal.SIGTERM)

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """Keep what the leader reported for the summary."""
        output = getattr(node, "workeroutput", {}).get(OUTPUT_KEY)
        if output:
            self.outputs.append(output)

    def pytest_unconfigure(self) -> None:
        self.signals.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def summary(self) -> list[str]:
        """The leader's figures, as this controller received them; nothing when none ran."""
        if not self.outputs or not self.outputs[0]["items"]:
            return []
        data = self.outputs[0]
        lines = summary_lines(
            data["items"],
            Counts(**data["counts"]),
            EngineStats(**data["stats"]),
            data["unused"],
            data["pruned"],
        )
        return [*lines, data["fatal"]] if data["fatal"] else lines


class WorkerHooks:
    """Registered on xdist workers only."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """After a fatal API error, run nothing and have the controller stop every worker.

        ``pytest.exit`` in a worker looks like Ctrl-C to xdist, which replaces the worker.
        """
        fatal = session.config.stash[RUN_KEY].fatal
        if fatal is None:
            return None
        session.shouldstop = fatal
        return True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """On the worker that fetched, hand the summary's figures to the controller."""
        run = session.config.stash[RUN_KEY]
        if run.leader:
            session.config.workeroutput[OUTPUT_KEY] = {  # type: ignore[attr-defined]
                "items": run.items,
                "counts": dataclasses.asdict(run.counts),
                "stats": dataclasses.asdict(run.engine_stats),
                "unused": run.unused(),
                "pruned": run.pruned,
                "fatal": run.fatal,
            }


class FetcherLost(Exception):
    """The worker fetching for everyone stopped before publishing its outcomes."""


def fetch_once(
    run: GrokRun, directory: Path, fetch: Callable[[], str | None], controller: int | None = None
) -> str | None:
    """Fetch in the first worker to take the lock; in the others, read what it published.

    ``fetch`` fills ``run`` and returns the message of an error that stops the run, or None;
    so does this function, in every worker. Raises FetcherLost when the fetching worker died.
    ``controller`` is the controller's pid: the fetching worker stops as on Ctrl-C once it
    is no longer this process's parent (killed, so it cannot tell anyone).
    """
    from filelock import FileLock  # only under xdist (see recordings.store.locked)

    # Ctrl-C still stops a waiting worker: FileLock polls, sleeping between attempts.
    with FileLock(directory / LOCK):
        published = directory / OUTCOMES
        claim = directory / LEADER
        if not published.exists():
            if claim.exists():
                pid = claim.read_text(encoding="utf-8")
                raise FetcherLost(
                    f"the xdist worker fetching responses for the run (pid {pid}) exited "
                    "before it finished; see that worker's error above"
                )
            claim.write_text(str(os.getpid()), encoding="utf-8")
            run.leader = True
            fatal = None
            try:
                with _stop_when_orphaned(controller):
                    fatal = fetch()
            finally:
                # Also after an exception: the others then report the outcomes it left.
                _publish(published, run, fatal)
            return fatal
    # Published once and never rewritten, so it is read without holding the lock.
    return _read(published, run)


@contextlib.contextmanager
def _stop_when_orphaned(controller: int | None) -> Iterator[None]:
    """While in the block, SIGTERM this process once its parent is no longer `controller`."""
    if controller is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(ORPHAN_POLL):
            if os.getppid() != controller:
                os.kill(os.getpid(), signal.SIGTERM)  # the prefetch takes it as Ctrl-C
                return

    watcher = threading.Thread(target=watch, name="grokeval-orphan-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def controller_pid(config: pytest.Config) -> int | None:
    """The pid of this worker's xdist controller, None outside a worker."""
    value = getattr(config, "workerinput", {}).get(CONTROLLER_PID_KEY)
    return value if isinstance(value, int) else None


def _dump(outcome: Outcome) -> list[Any]:
    if isinstance(outcome, Completion):
        return ["completion", {**outcome.to_json(), "replayed": outcome.replayed}]
    return ["error", outcome.to_json()]


def _load(kind: str, data: dict[str, Any]) -> Outcome:
    if kind == "completion":
        return Completion.from_json(data, replayed=bool(data.get("replayed")))
    return FetchError.from_json(data)


def _publish(path: Path, run: GrokRun, fatal: str | None) -> None:
    """Write every outcome, grader reply and kept check result for the others, atomically."""
    document = {
        "fatal": fatal,
        "outcomes": [[key, sample, *_dump(o)] for (key, sample), o in run.outcomes.items()],
        "graded": [
            [key, sample, name, *_dump(o)] for (key, sample, name), o in run.graded.items()
        ],
        "checked": run.checked_json(),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outcomes.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dumps(document))
    os.replace(tmp, path)


def _read(path: Path, run: GrokRun) -> str | None:
    document = json.loads(path.read_text(encoding="utf-8"))
    for key, sample, kind, data in document["outcomes"]:
        run.outcomes[(key, sample)] = _load(kind, data)
    for key, sample, name, kind, data in document["graded"]:
        run.graded[(key, sample, name)] = _load(kind, data)
    run.adopt_checked(document.get("checked") or [])
    fatal: str | None = document["fatal"]
    run.fatal = fatal
    return fatal
