"""Recordings: one reviewable JSON file per suite file, read for replay and written atomically."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_grokeval.data import ChatRequest, Completion, canonical_json
from pytest_grokeval.jsonfile import (
    JSONFileError,
    clean_text,
    dumps,
    load_json,
    locate,
    read_regular,
)
from pytest_grokeval.recordings.journal import (
    LOCK_NAME,
    Journal,
    ensure_gitignore,
    journals_of,
    read_journal,
    remove_if_unchanged,
    short_name,
)
from pytest_grokeval.recordings.schema import FORMAT_VERSION, RECORDINGS_SCHEMA

DIRNAME = "__recordings__"
MODES = ("none", "new", "all", "rewrite")
NOTE = (
    "Recorded by pytest-grokeval. Review changes in pull requests; "
    "re-record with --grok-record=new (missing) or --grok-record=all (everything)."
)
HINT = "fix it by hand or delete it and re-record with --grok-record=new"
WHAT = "recordings file"


class RecordingError(Exception):
    """A recordings file that cannot be read: named, with the line where there is one."""


def recordings_path(suite_path: Path) -> Path:
    """Where a suite's recordings live: ``__recordings__/<stem>.json`` beside it.

    A Python test module's keep their suffix (``test_x.py.json``) so that they never share a
    file with a suite of the same stem.
    """
    yaml = suite_path.suffix in (".yaml", ".yml")
    return suite_path.parent / DIRNAME / f"{suite_path.stem if yaml else suite_path.name}.json"


@dataclass(frozen=True)
class Entry:
    item: str
    sample: int
    fingerprint: str
    request: dict[str, Any]
    response: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "fingerprint": self.fingerprint,
            "request": self.request,
            "response": self.response,
        }


def _request_json(request: ChatRequest) -> dict[str, Any]:
    data = {"model": request.model, "messages": list(request.messages), "params": request.params}
    # As in the fingerprint: the endpoint only when not chat, so chat entries stay as they were.
    if request.api != "chat":
        data["api"] = request.api
    return data


class RecordingStore:
    """The recordings of one suite file: lookups for replay, changes queued until save()."""

    def __init__(
        self,
        path: Path,
        entries: dict[tuple[str, int], Entry],
        note: str,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.path = path
        self._entries = entries
        self._note = note
        self._by_fingerprint = {e.fingerprint: e for e in entries.values()}
        self._puts: dict[tuple[str, int], Entry] = {}
        self._drops: set[tuple[str, int]] = set()
        self._redact = redact
        self._journal = Journal(path, redact)
        # Journals of earlier runs merged at load, with their size then: deleted after the
        # next save unless they grew since or their writer is alive (see remove_if_unchanged).
        self._merged: list[tuple[Path, int]] = []
        # Journals with damaged lines, kept: (journal, first damaged line, what, how many).
        self.damaged: list[tuple[Path, int, str, int]] = []
        # Set by release(): the recorded keys, once the entries themselves are dropped.
        self._released: set[tuple[str, int]] | None = None
        # Entries that answered a lookup under another item's name (a renamed case): in use.
        self.served: set[tuple[str, int]] = set()

    @classmethod
    def load(cls, suite_path: Path, redact: Callable[[str], str] = str) -> RecordingStore:
        """Read a suite's recordings and merge its journals; a missing file is an empty store.

        Raises RecordingError naming the file and line when the file cannot be used.
        """
        path = recordings_path(suite_path)
        entries, note = _read(path)
        store = cls(path, entries, note, redact)
        store._merge_journals()
        if stale_temporary_files(path.parent):
            # A replay may never save: clean up after an interrupted save now.
            with contextlib.suppress(OSError), locked(path.parent):
                pass
        return store

    def _merge_journals(self) -> None:
        for journal in journals_of(self.path):
            try:
                size = journal.stat().st_size
            except OSError:
                continue
            found = read_journal(journal)
            for line in found.lines:
                key = (line["item"], line["sample"])
                entry = Entry(
                    line["item"], line["sample"], line["fingerprint"], line["request"],
                    line["response"],
                )
                self._entries[key] = self._puts[key] = entry
                self._by_fingerprint[entry.fingerprint] = entry
            if found.damaged:
                # Kept, not deleted: the user may mend a line and recover a paid answer.
                number, what = found.damaged[0]
                self.damaged.append((journal, number, what, len(found.damaged)))
            else:
                self._merged.append((journal, size))

    @property
    def journal_problem(self) -> str | None:
        """Why responses are not being saved as they arrive, if they are not."""
        return self._journal.problem

    def keys(self) -> set[tuple[str, int]]:
        """The recorded (item name, sample) pairs."""
        return set(self._entries) if self._released is None else set(self._released)

    def release(self) -> None:
        """Drop the recorded requests and responses; keys() still answers.

        For after the prefetch, which asks for everything else: the parsed entries are most
        of a replay's memory (bench/replay.py). Raises RuntimeError while changes are unsaved.
        """
        if self.changed:
            raise RuntimeError(f"{self.path}: release() before save()")
        self._released = set(self._entries)
        self._entries = {}
        self._by_fingerprint = {}

    def lookup(self, item: str, request: ChatRequest, slot: int) -> Completion | None:
        """The recorded completion at (item, slot), if the request is unchanged."""
        if self._released is not None:
            raise RuntimeError(f"{self.path}: lookup() after release()")
        entry = self._entries.get((item, slot))
        if entry is None or entry.fingerprint != request.fingerprint:
            # The same request recorded under another item name (a renamed case) still replays.
            entry = self._by_fingerprint.get(request.fingerprint)
            if entry is not None:
                self.served.add((entry.item, entry.sample))
        if entry is None:
            return None
        return Completion.from_json(entry.response, replayed=True)

    def recorded_model(self, item: str, sample: int) -> str | None:
        entry = self._entries.get((item, sample))
        return None if entry is None else str(entry.response.get("model") or "") or None

    def explain_miss(self, item: str, request: ChatRequest, slot: int, display: str) -> str:
        """Why replay found nothing, and the exact way to record it."""
        how = "record it with XAI_API_KEY set and --grok-record=new"
        entry = self._entries.get((item, slot))
        if entry is None:
            what = "sample " + str(slot) + " of " if slot else ""
            return f"no recording of {what}{item!r} in {display}; {how}"
        change = describe_change(entry.request, _request_json(request))
        return f"the recording of {item!r} in {display} is stale: {change}; {how}"

    def put(self, item: str, request: ChatRequest, completion: Completion, slot: int) -> None:
        entry = Entry(
            item=item,
            sample=slot,
            fingerprint=request.fingerprint,
            request=_request_json(request),
            response=completion.to_json(),
        )
        self._puts[(item, slot)] = entry
        self._drops.discard((item, slot))
        self._journal.append({"item": item, **entry.to_json()})

    def drop(self, key: tuple[str, int]) -> None:
        self._drops.add(key)
        self._puts.pop(key, None)

    @property
    def changed(self) -> bool:
        return bool(self._puts or (self._drops & set(self._entries)))

    def save(self) -> None:
        """Apply queued changes to the file as it is now on disk, atomically, under a lock.

        Raises OSError (the folder or the disk) or RecordingError (the file was damaged
        meanwhile); the journals then stay, and the next run merges them.
        """
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_gitignore(self.path.parent)
        with locked(self.path.parent):
            current, note = _read(self.path)
            current.update(self._puts)
            for key in self._drops:
                current.pop(key, None)
            write_atomic(self.path, clean_text(self._redact(render(current, note or self._note))))
            self._entries = current
            self._by_fingerprint = {e.fingerprint: e for e in current.values()}
            self._puts.clear()
            self._drops.clear()
            self._journal.discard()
            for journal, size in self._merged:
                remove_if_unchanged(journal, size)
            self._merged.clear()


def render(entries: dict[tuple[str, int], Entry], note: str) -> str:
    """Stable text: items sorted, samples in order, keys sorted, so diffs show only changes."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(entries):
        grouped.setdefault(key[0], []).append(entries[key].to_json())
    document = {"version": FORMAT_VERSION, "about": note, "entries": grouped}
    return dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _read(path: Path) -> tuple[dict[tuple[str, int], Entry], str]:
    """The entries of a recordings file, validated; RecordingError names file and line."""
    try:
        document = load_json(
            path, what=WHAT, hint=HINT, schema=RECORDINGS_SCHEMA,
            check=lambda d: _check_version(path, d),
        )
    except FileNotFoundError:
        return {}, NOTE
    except JSONFileError as exc:
        raise RecordingError(str(exc)) from None
    entries: dict[tuple[str, int], Entry] = {}
    for item, samples in document["entries"].items():
        for index, raw in enumerate(samples):
            sample = raw["sample"]
            if (item, sample) in entries:
                # A hand merge that kept both sides: which answer is meant cannot be guessed.
                line = locate(read_regular(path).decode("utf-8"), ["entries", item, index])
                raise RecordingError(
                    f"{path}{f':{line}' if line else ''}: malformed {WHAT}: {item!r} holds "
                    f"sample {sample} twice; {HINT}"
                )
            entries[(item, sample)] = Entry(
                item, sample, raw["fingerprint"], raw["request"], raw["response"]
            )
    note = document.get("about")
    return entries, note if isinstance(note, str) else NOTE


def _check_version(path: Path, document: Any) -> None:
    """A clearer message than the schema's for files of another format version."""
    if isinstance(document, dict) and "version" in document and (
        document["version"] != FORMAT_VERSION
    ):
        raise JSONFileError(
            f"{path}: malformed {WHAT}: unsupported version {document['version']!r} "
            f"(expected {FORMAT_VERSION}); {HINT}"
        )


def describe_change(recorded: Any, current: dict[str, Any]) -> str:
    """Name the part of the request that changed since it was recorded."""
    if not isinstance(recorded, dict):
        return "the recorded request is unreadable"
    old_api, new_api = recorded.get("api", "chat"), current.get("api", "chat")
    if old_api != new_api:
        return f"the endpoint (api) changed from {old_api!r} to {new_api!r}"
    if recorded.get("model") != current["model"]:
        return f"the model changed from {recorded.get('model')!r} to {current['model']!r}"
    old_messages = recorded.get("messages") or []
    new_messages = current["messages"]
    if old_messages != new_messages:
        for index, (old, new) in enumerate(zip(old_messages, new_messages, strict=False)):
            if old != new:
                role = new.get("role", "?") if isinstance(new, dict) else "?"
                what = "prompt" if role == "user" else f"{role} message"
                return (
                    f"the {what} (message {index + 1}) changed: "
                    f"recorded {_content(old)!r}, now {_content(new)!r}"
                )
        return f"the number of messages changed from {len(old_messages)} to {len(new_messages)}"
    old_params = recorded.get("params") or {}
    new_params = current["params"]
    changed = sorted(
        k for k in set(old_params) | set(new_params) if old_params.get(k) != new_params.get(k)
    )
    if changed:
        parts = [
            f"{k} {old_params.get(k, '(unset)')!r} -> {new_params.get(k, '(unset)')!r}"
            for k in changed
        ]
        return "params changed: " + ", ".join(parts)
    return "the request changed (fingerprint differs)"


def _content(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    text = content if isinstance(content, str) else canonical_json(content)
    return text if len(text) <= 120 else text[:57] + " ... " + text[-57:]


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise writers of one folder across processes (xdist workers, parallel runs).

    Also the moment to delete temporary files that an interrupted save left: while the lock
    is held, no save is in progress.
    """
    # Imported here: a replay never locks, and filelock's import is 15 ms and a megabyte.
    from filelock import FileLock

    with FileLock(directory / LOCK_NAME):
        for path in stale_temporary_files(directory):
            with contextlib.suppress(OSError):
                path.unlink()
        yield


def stale_temporary_files(directory: Path) -> list[Path]:
    """Temporary files of saves in `directory`: stale unless a save holds the lock."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [directory / n for n in names if n.startswith(".") and n.endswith(".tmp")]


def write_atomic(path: Path, text: str) -> None:
    """Replace the file in one step: a reader sees the old text or the new, never a part."""
    # A short prefix: a file name near the 255-byte limit must still leave room for the suffix.
    prefix = f".{short_name(path.name)}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); keep the old file's mode, or the usual 0644,
        # so that a CI server or a teammate can still read a report or a recording.
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o644
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
