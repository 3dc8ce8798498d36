"""Save as you go: each response appended to a journal beside the recordings as it arrives.

One journal per suite file and process, ``__recordings__/.<name>.<pid>.journal``, one JSON line
per response. A line is written with one ``write`` on an ``O_APPEND`` descriptor, so a kill
loses at most a half line, which the reader skips. The next run that loads the suite merges
every journal it finds into the recordings file and deletes them once that file is written.
A generated ``.gitignore`` keeps journals, temporary files and the lock out of ``git add``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_grokeval.jsonfile import clean_text, conforms, dumps, loads
from pytest_grokeval.recordings.schema import JOURNAL_LINE_SCHEMA

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


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The valid lines of a journal; a torn last line or a damaged one is skipped."""
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    found = []
    for line in raw.split(b"\n"):
        try:
            data = loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        if conforms(data, JOURNAL_LINE_SCHEMA):
            found.append(data)
    return found


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
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(self._fd, data)
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}"
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Once its lines are in the recordings file: close and delete it."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
