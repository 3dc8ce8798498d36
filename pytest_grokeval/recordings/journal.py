"""Save as you go: each response appended to a journal beside the recordings as it arrives.

One journal per suite file and process, ``__recordings__/.<name>.<pid>.journal``, one JSON line
per response. A line is written with one ``write`` on an ``O_APPEND`` descriptor, so a kill
loses at most a half line, which the reader skips. The next run that loads the suite merges
every journal it finds into the recordings file and deletes them once that file is written,
except a journal whose writer is alive (it holds an ``flock`` on it for its lifetime, which the
kernel releases when it dies) and a journal with a damaged line (kept for the user to look at).
A generated ``.gitignore`` keeps journals, temporary files and the lock out of ``git add``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_grokeval.jsonfile import (
    JSONFileError,
    clean_text,
    dumps,
    parse_json,
    read_regular,
    validate,
)
from pytest_grokeval.recordings.schema import JOURNAL_LINE_SCHEMA

if sys.platform != "win32":
    import fcntl

SUFFIX = ".journal"
LOCK_NAME = ".grokeval.lock"
GITIGNORE = """\
# Written by pytest-grokeval. Commit the *.json recordings; never these: journals of runs
# in progress (merged into the recordings by the next run), temporary files, the lock.
.*.journal
.*.tmp
.grokeval.lock
"""
# Longer file names are shortened with a digest, so that a prefix, a pid and a suffix still fit
# in the 255 bytes most file systems allow.
_MAX_STEM = 100
# Seconds a new journal waits for a lock another process holds while deleting a stale file.
_LOCK_WAIT = 1.0


def short_name(name: str) -> str:
    """`name`, or for a long one its start plus a digest: a safe stem for side files."""
    if len(name.encode()) <= _MAX_STEM:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return name.encode()[: _MAX_STEM - 13].decode(errors="ignore") + "-" + digest


def journals_of(recordings: Path) -> list[Path]:
    """Every journal of one recordings file, of any process, oldest first."""
    prefix = f".{short_name(recordings.name)}."
    try:
        names = os.listdir(recordings.parent)
    except OSError:
        return []
    found = [
        recordings.parent / n for n in names if n.startswith(prefix) and n.endswith(SUFFIX)
    ]
    return sorted(found, key=_mtime)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@dataclass
class JournalLines:
    """A journal as read: its valid lines, and its damaged ones as (line number, what)."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[tuple[int, str]] = field(default_factory=list)


# Only the message of a JSONFileError is wanted: the journal's own path and line are added
# by the caller, who knows which line of the file this is.
_WHAT = "journal line"
_HINT = "-"


def read_journal(path: Path) -> JournalLines:
    """The lines of a journal; a torn last line (a writer killed mid-write) is skipped silently.

    A complete line (ended by a newline) that is not UTF-8, not strict JSON or not an entry is
    reported in `damaged` with its 1-based number. An unreadable file reads as empty.
    """
    found = JournalLines()
    try:
        raw = read_regular(path)  # a FIFO or a device named like a journal would block
    except OSError:
        return found
    *complete, last = raw.split(b"\n")
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        data, problem = _parse_line(line)
        if problem is None:
            found.lines.append(data)
        else:
            found.damaged.append((number, problem))
    # Without its newline the last line was cut short by a kill; whole, it is still an answer.
    data, problem = _parse_line(last)
    if problem is None:
        found.lines.append(data)
    return found


def _parse_line(line: bytes) -> tuple[dict[str, Any], str | None]:
    """One journal line as an entry, or why it is not one."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return {}, "not UTF-8 text"
    try:
        data = parse_json(text, path=Path(), what=_WHAT, hint=_HINT)
        validate(data, JOURNAL_LINE_SCHEMA, text=text, path=Path(), what=_WHAT, hint=_HINT)
    except JSONFileError as exc:
        message = str(exc).partition(f"malformed {_WHAT}: ")[2].removesuffix(f"; {_HINT}")
        return {}, message or str(exc)
    return data, None


def remove_if_unchanged(path: Path, size: int) -> None:
    """Delete a merged journal of another process, unless its writer is alive or it grew.

    `size`: its size in bytes when it was merged. A writer holds an ``flock`` on its journal
    from its first line to its exit, so a lock taken here means no process writes it. Errors
    (already gone, no permission) leave it for the next run.
    """
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            if sys.platform != "win32":
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # alive: its run merges it itself, or the next run once it is dead
            # Held until the unlink: a writer that opened the path meanwhile waits for the lock,
            # then sees the file gone and opens a new one (Journal._open).
            own = os.fstat(fd)
            there = os.stat(path)
            if own.st_size == size and (own.st_dev, own.st_ino) == (there.st_dev, there.st_ino):
                os.unlink(path)
        finally:
            os.close(fd)


def ensure_gitignore(directory: Path) -> None:
    """Write the folder's .gitignore once; a user's own file is left alone."""
    path = directory / ".gitignore"
    if not path.exists():
        with contextlib.suppress(OSError):
            path.write_text(GITIGNORE, encoding="utf-8")


class Journal:
    """This process's journal of one recordings file, opened at the first append."""

    def __init__(self, recordings: Path, redact: Callable[[str], str]) -> None:
        self.path = recordings.parent / f".{short_name(recordings.name)}.{os.getpid()}{SUFFIX}"
        self._redact = redact
        self._fd: int | None = None
        self._opened = False
        self.problem: str | None = None

    def append(self, line: dict[str, Any]) -> None:
        """Write one response now; a journal that cannot be written is given up and noted."""
        if self.problem is not None:
            return
        text = dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        data = (clean_text(self._redact(text)) + "\n").encode("utf-8")
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                ensure_gitignore(self.path.parent)
                self._fd = self._open()
                self._opened = True
            os.write(self._fd, data)
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}"
            self.close()

    def _open(self) -> int:
        """The journal, opened for appending and locked for this process's lifetime.

        The lock tells other runs that this journal is alive (see remove_if_unchanged).
        """
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if sys.platform == "win32":
                return fd  # Windows refuses to delete a file that is open
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another run deleting a stale journal of the same pid holds it for an instant;
                # a second store of this process writing the same file holds it for good,
                # and its lock already keeps the file alive.
                if time.monotonic() < deadline:
                    os.close(fd)
                    time.sleep(0.005)
                    continue
                return fd
            except OSError:
                return fd  # a file system without locks: as before, unprotected
            try:
                own, there = os.fstat(fd), os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            if (own.st_dev, own.st_ino) == (there.st_dev, there.st_ino):
                return fd
            os.close(fd)  # deleted by another run between our open and our lock: open anew

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Once its lines are in the recordings file: close and delete it.

        A file of the same name this process never wrote (a dead process had its pid) is left
        to the merge, which keeps it if a line of it is damaged.
        """
        self.close()
        if self._opened:
            with contextlib.suppress(OSError):
                self.path.unlink()
