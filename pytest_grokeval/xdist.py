"""pytest-xdist: one worker fetches for all, so the concurrency limit holds for the whole run.

Every worker collects the full suite and sees every selected item before its loop starts, but
none knows which items it will run. So the first worker to create the leader file in a folder
the controller shares with all workers fetches every request (one process, one semaphore) and
writes the outcomes there; the others wait for that file and read it. Only the leader writes
recordings. Followers stop waiting when the leader's process is gone or its heartbeat stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_grokeval.data import Completion, FetchError, Outcome

SHARED_DIR_KEY = "grokeval_shared_dir"
OUTPUT_KEY = "grokeval"
LEADER = "leader"
OUTCOMES = "outcomes.json"
HEARTBEAT = "heartbeat"
HEARTBEAT_INTERVAL = 0.5
# A leader whose heartbeat is older than this is taken for dead (it may be on another host).
HEARTBEAT_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def shared_dir(config: pytest.Config) -> Path | None:
    value = getattr(config, "workerinput", {}).get(SHARED_DIR_KEY)
    return None if value is None else Path(value)


class ControllerHooks:
    """Registered on the xdist controller only: shares a folder and gathers the leader's data."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="grokeval-xdist-"))
        self.outputs: list[dict[str, Any]] = []

    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker where the run's shared folder is."""
        node.workerinput[SHARED_DIR_KEY] = str(self.directory)

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """Keep what the leader reported for the summary."""
        output = getattr(node, "workeroutput", {}).get(OUTPUT_KEY)
        if output:
            self.outputs.append(output)

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def become_leader(directory: Path) -> bool:
    """True for exactly one worker of the run: the one that creates the leader file."""
    try:
        fd = os.open(directory / LEADER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


@contextlib.contextmanager
def heartbeat(directory: Path) -> Iterator[None]:
    """Touch the heartbeat file while the leader fetches, so followers know it is alive."""
    stop = threading.Event()
    path = directory / HEARTBEAT

    def beat() -> None:
        while not stop.is_set():
            path.touch()
            stop.wait(HEARTBEAT_INTERVAL)

    thread = threading.Thread(target=beat, name="grokeval-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _dump(outcome: Outcome) -> list[Any]:
    if isinstance(outcome, Completion):
        return ["completion", {**outcome.to_json(), "replayed": outcome.replayed}]
    return ["error", outcome.to_json()]


def _load(kind: str, data: dict[str, Any]) -> Outcome:
    if kind == "completion":
        return Completion.from_json(data, replayed=bool(data.get("replayed")))
    return FetchError.from_json(data)


Graded = dict[tuple[str, int, str], Outcome]


def publish(
    directory: Path,
    outcomes: dict[tuple[str, int], Outcome],
    graded: Graded,
    fatal: str | None,
    checked: list[Any] | None = None,
) -> None:
    """Write every outcome, grader reply and kept check result for the followers, atomically."""
    document = {
        "fatal": fatal,
        "checked": checked or [],
        "outcomes": [[key, sample, *_dump(o)] for (key, sample), o in outcomes.items()],
        "graded": [[key, sample, name, *_dump(o)] for (key, sample, name), o in graded.items()],
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".outcomes.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(tmp, directory / OUTCOMES)


def wait_for_leader(
    directory: Path,
) -> tuple[dict[tuple[str, int], Outcome], Graded, str | None, list[Any]]:
    """Read the leader's outcomes once written; raise LeaderLost if it died first."""
    path = directory / OUTCOMES
    while not path.exists():
        _check_leader_alive(directory)
        time.sleep(POLL_INTERVAL)
    document = json.loads(path.read_text(encoding="utf-8"))
    outcomes = {
        (key, sample): _load(kind, data) for key, sample, kind, data in document["outcomes"]
    }
    graded = {
        (key, sample, name): _load(kind, data)
        for key, sample, name, kind, data in document["graded"]
    }
    return outcomes, graded, document["fatal"], document.get("checked") or []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker stays a zombie until xdist reaps it, and signal 0 still reaches it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


class LeaderLost(Exception):
    """The worker fetching for everyone stopped before publishing its outcomes."""


def _check_leader_alive(directory: Path) -> None:
    leader = directory / LEADER
    try:
        pid = int(leader.read_text() or "0")
    except (OSError, ValueError):
        return  # being written right now
    if pid and not _alive(pid):
        raise LeaderLost(
            f"the xdist worker fetching responses for the run (pid {pid}) exited before "
            "it finished; see that worker's error above"
        )
    beat = directory / HEARTBEAT
    stamp = beat.stat().st_mtime if beat.exists() else leader.stat().st_mtime
    if time.time() - stamp > HEARTBEAT_TIMEOUT:
        raise LeaderLost(
            f"the xdist worker fetching responses for the run gave no sign of life for "
            f"{HEARTBEAT_TIMEOUT:g} s"
        )
