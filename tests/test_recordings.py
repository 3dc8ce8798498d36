"""The recordings store on its own: how one save meets the other writers of the same file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_grokeval.data import ChatRequest, Completion, Usage
from pytest_grokeval.recordings import store as recordings
from pytest_grokeval.recordings.store import RecordingStore, recordings_path


def record(suite: Path, name: str) -> RecordingStore:
    """The suite's recordings as loaded now, with an answer for `name` queued."""
    store = RecordingStore.load(suite)
    request = ChatRequest("grok-4.3", ({"role": "user", "content": name},))
    answer = Completion(f"answer to {name}", "stop", "grok-4.3", Usage(), 1.0, None)
    store.put(name, request, answer, 0)
    return store


def recorded(suite: Path) -> set[str]:
    keys = RecordingStore.load(suite).keys()  # a method of the store, not of a dict
    return {item for item, _ in keys}


def waiting_for_a_lock(directory: Path) -> bool:
    """Whether some process or thread is blocked on a flock of `directory` (Linux /proc/locks)."""
    inode = f":{directory.stat().st_ino} "
    locks = Path("/proc/locks").read_text()
    return any("->" in line and inode in line for line in locks.splitlines())


def test_an_entry_another_writer_saved_after_we_loaded_is_kept_when_we_save(
    tmp_path: Path,
) -> None:
    suite = tmp_path / "test_s.yaml"
    ours = record(suite, "ours")
    record(suite, "theirs").save()
    ours.save()
    assert recorded(suite) == {"ours", "theirs"}


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_two_writers_saving_at_once_both_keep_their_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "test_s.yaml"
    recordings_path(suite).parent.mkdir()
    ours, theirs = record(suite, "ours"), record(suite, "theirs")
    we_have_read = threading.Event()
    they_are_done = threading.Event()
    real_read = recordings._read
    main = threading.current_thread()

    def read(path: Path) -> tuple[dict[tuple[str, int], recordings.Entry], str]:
        found = real_read(path)
        if threading.current_thread() is main:
            # Between our read and our write, the other writer tries to save. Under the lock it
            # blocks (seen in /proc/locks); without it, or reading before locking, it finishes.
            we_have_read.set()
            deadline = time.monotonic() + 30
            while not (they_are_done.is_set() or waiting_for_a_lock(path.parent)):
                assert time.monotonic() < deadline, "the other writer neither saved nor waited"
                they_are_done.wait(0.01)
        return found

    def save_theirs() -> None:
        we_have_read.wait(30)
        theirs.save()
        they_are_done.set()

    monkeypatch.setattr(recordings, "_read", read)
    other = threading.Thread(target=save_theirs)
    other.start()
    try:
        ours.save()
    finally:
        other.join(30)
    assert recorded(suite) == {"ours", "theirs"}
