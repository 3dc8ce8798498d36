"""The recordings store on its own: how one save meets the other writers of the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from pytest_grokeval.data import ChatRequest, Completion, Usage
from pytest_grokeval.recordings import store as recordings
from pytest_grokeval.recordings.journal import LOCK_NAME
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


def test_an_entry_another_writer_saved_after_we_loaded_is_kept_when_we_save(
    tmp_path: Path,
) -> None:
    suite = tmp_path / "test_s.yaml"
    ours = record(suite, "ours")
    record(suite, "theirs").save()
    ours.save()
    assert recorded(suite) == {"ours", "theirs"}


def test_a_save_reads_the_file_while_holding_the_lock_other_writers_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "test_s.yaml"
    recordings_path(suite).parent.mkdir()
    ours = record(suite, "ours")
    real_read = recordings._read
    held_while_reading: list[bool] = []

    def read(path: Path) -> tuple[dict[tuple[str, int], recordings.Entry], str]:
        # Another writer (a second FileLock on the same file, as another process has) must not
        # get the lock between our read and our write: that is what keeps its entries.
        other = FileLock(path.parent / LOCK_NAME)
        try:
            other.acquire(timeout=0)
        except Timeout:
            held_while_reading.append(True)
        else:
            other.release()
            held_while_reading.append(False)
        return real_read(path)

    monkeypatch.setattr(recordings, "_read", read)
    ours.save()
    assert held_while_reading and all(held_while_reading), held_while_reading
    record(suite, "theirs").save()
    assert recorded(suite) == {"ours", "theirs"}
