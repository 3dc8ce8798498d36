"""What batch mode keeps between runs, in pytest's cache: per request set, each batch's id,
the ids added to it, and the results token read up to.

The file is replaced in one step (write_atomic), never through pytest's Cache.set, which
truncates the file before writing: a SIGTERM or a kill in between left it empty, and the next
run, finding no batch id, made a new batch and paid again for what the first still ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_grokeval.data import ChatRequest, FetchError
from pytest_grokeval.engine.batchrules import BatchStop
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.recordings.store import write_atomic

if TYPE_CHECKING:
    import openai

# pytest's cache folder for this plugin (Cache.mkdir), and the file in it.
CACHE_DIR, CACHE_FILE = "grokeval", "batches.json"
SHOWN = f"d/{CACHE_DIR}/{CACHE_FILE}"  # as messages name it, under .pytest_cache
# A batch id goes into URL paths: nothing that could climb out of /batches/{id}.
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


class Cache(Protocol):
    """pytest's `config.cache`, as far as batch mode uses it."""

    def mkdir(self, name: str) -> Path:
        """The cache's folder `name`, made if missing (pytest.Cache.mkdir)."""


@dataclass
class Batch:
    """One batch of a run: its id, what was added, the token read up to, its last state."""

    role: str  # "main" or "judge"
    batch_id: str
    added: set[str] = field(default_factory=set)
    token: str | None = None
    pending: int = 0
    succeeded: int = 0
    failed: int = 0
    ticks: int = 0  # the batch's cost_breakdown so far (1 USD = 1e10 ticks)

    def to_json(self) -> dict[str, Any]:
        """{id, added (sorted request ids), token}, as pytest's cache keeps it."""
        return {"id": self.batch_id, "added": sorted(self.added), "token": self.token}


def unanswered(batch: Batch, futures: Mapping[str, asyncio.Future[Any]]) -> list[str]:
    """The ids `batch` was given (by the cache's account) whose results are still awaited."""
    return [rid for rid in sorted(batch.added) if rid in futures and not futures[rid].done()]


def request_set_key(requests: Iterable[ChatRequest], base_url: str) -> str:
    """A short hash naming a run's request set at a base URL: the cache key of its batches."""
    digest = hashlib.sha256(base_url.encode())
    for fingerprint in sorted({r.fingerprint for r in requests}):
        digest.update(fingerprint.encode())
    return digest.hexdigest()[:16]


class Stored:
    """The cache entry of one request set (`key`); without a cache, nothing is kept."""

    def __init__(
        self, cache: Cache | None, key: str, say: Callable[[str], None] = lambda _: None
    ) -> None:
        self.cache = cache
        self.key = key
        self._say = say
        self._warned = False

    def load(self, role: str) -> Batch | None:
        """The batch an earlier run left for `role`, if the cache names a well-formed one.

        A malformed record (hand-edited, another version's) is ignored, saying so once.
        """
        if self.cache is None:
            return None
        stored = _read(self.cache)
        entry = stored.get(self.key) if isinstance(stored, dict) else None
        data = entry.get(role) if isinstance(entry, dict) else None
        problem = record_problem(data) if data is not None else None
        if entry is not None and not isinstance(entry, dict):
            problem = f"an entry of {type(entry).__name__}, not a mapping of roles"
        if isinstance(stored, Unreadable):
            problem = stored.reason
        elif not isinstance(stored, dict):
            problem = f"{type(stored).__name__}, not a mapping of request sets"
        if problem is not None:
            if not self._warned:
                self._say(
                    f"grokeval: pytest's cache ({SHOWN}) holds a malformed batch record "
                    f"for this run ({problem}); ignoring it"
                )
            self._warned = True
            return None
        if not isinstance(data, dict):
            return None
        return Batch(role, data["id"], set(data.get("added") or ()), data.get("token"))

    def save(self, batches: Iterable[Batch]) -> None:
        """Store these batches, keeping the stored roles this run has not opened (yet)."""
        if self.cache is None:
            return
        stored = _entries(self.cache)
        entry = stored.get(self.key)
        roles = dict(entry) if isinstance(entry, dict) else {}
        roles.update({b.role: b.to_json() for b in batches})
        stored[self.key] = roles
        _write(self.cache, stored)

    def drop(self, role: str) -> None:
        """Forget the batch stored for `role` (cancelled, or gone at the server)."""
        if self.cache is None:
            return
        stored = _entries(self.cache)
        entry = stored.get(self.key)
        if isinstance(entry, dict) and entry.pop(role, None) is not None:
            _write(self.cache, stored)

    def split(self, requests: list[ChatRequest], default: str) -> dict[str, list[ChatRequest]]:
        """`requests` by role: the stored batch that already holds one, else `default`.

        A resumed run may ask for grader requests before any sample request (the samples were
        replayed): they belong to the stored judge batch, not to a new one.
        """
        holders: dict[str, str] = {}
        for role in ("main", "judge"):
            found = self.load(role)
            for rid in found.added if found is not None else ():
                holders.setdefault(rid, role)
        split: dict[str, list[ChatRequest]] = {}
        for request in requests:
            split.setdefault(holders.get(request.fingerprint, default), []).append(request)
        return split

    def finish(self, opened: Mapping[str, Batch], say: Callable[[str], None]) -> None:
        """The run read all it needed: forget its batches, but keep (saying so) a stored one
        it never opened, which may still run at xAI and only the cache can cancel."""
        kept = [
            (role, b)
            for role in ("main", "judge")
            if role not in opened
            for b in [self.load(role)]
            if b is not None
        ]
        if not kept:
            self.forget()
            return
        for role in opened:
            self.drop(role)
        for role, batch in kept:
            say(
                f"grokeval: this run needed no result of batch {batch.batch_id} ({role}); "
                "it stays in pytest's cache: cancel it with `pytest --grok-batch-cancel` "
                "if it still runs"
            )

    def forget(self) -> None:
        """Drop this request set's entry: its batches are read to the end."""
        if self.cache is None:
            return
        stored = _entries(self.cache)
        if stored.pop(self.key, None) is not None:
            _write(self.cache, stored)


def _entries(cache: Cache) -> dict[str, Any]:
    """The cache value of batch mode, a mapping of request-set keys ({} when it is not one)."""
    stored = _read(cache)
    return stored if isinstance(stored, dict) else {}


@dataclass(frozen=True)
class Unreadable:
    """A state file that is not JSON (emptied or cut short by hand): why, for the message."""

    reason: str


def _read(cache: Cache) -> Any:
    """The stored JSON value: {} when there is none, Unreadable when it does not parse."""
    try:
        text = (cache.mkdir(CACHE_DIR) / CACHE_FILE).read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        return Unreadable(f"not JSON: {exc}")


def _write(cache: Cache, value: object) -> None:
    """Replace the stored value in one step.

    Raises BatchStop when it cannot: without its batch ids, a stopped run could not be
    resumed, and its rerun would pay again for a new batch.
    """
    try:
        write_atomic(cache.mkdir(CACHE_DIR) / CACHE_FILE, json.dumps(value, indent=2))
    except OSError as exc:
        raise BatchStop(
            f"cannot keep the batch ids in pytest's cache (.pytest_cache/{SHOWN}): "
            f"{exc.strerror or exc}; make it writable (batch mode needs it to resume a stopped "
            "run without paying twice)"
        ) from None


def record_problem(data: Any) -> str | None:
    """What is wrong with a stored batch record ({id, added, token}), or None."""
    if not isinstance(data, dict):
        return f"a record of {type(data).__name__}, not a mapping"
    batch_id = data.get("id")
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        return f"batch id {batch_id!r} is not of the form {BATCH_ID.pattern}"
    added = data.get("added", [])
    if not isinstance(added, list) or not all(isinstance(a, str) for a in added):
        return "'added' is not a list of request ids"
    if not isinstance(data.get("token"), (str, type(None))):
        return "'token' is not a string"
    return None


async def still_there(state: Awaitable[Any]) -> bool:
    """Await a batch's state call; False when it answers 404: the server lost the batch.

    Raises what the call raises otherwise (FatalAPIError: a refused key, say).
    """
    try:
        await state
    except FatalAPIError as exc:
        if exc.error.status == 404:
            return False
        raise
    return True


async def cancel_stored(
    cache: Cache | None, client: openai.AsyncOpenAI
) -> tuple[list[str], list[str], list[str]]:
    """Cancel every batch this checkout's cache holds and forget them.

    Returns (cancelled ids, ids the server no longer knows: 404, forgotten all the same,
    malformed records: ignored, never sent). Raises FatalAPIError when the server refuses
    otherwise; the cache is kept then.
    """
    import openai

    raw = _read(cache) if cache is not None else {}
    stored = raw if isinstance(raw, dict) else {}
    cancelled: list[str] = []
    gone: list[str] = []
    malformed: list[str] = [raw.reason] if isinstance(raw, Unreadable) else []
    try:
        for entry in stored.values():
            for batch in entry.values() if isinstance(entry, dict) else [entry]:
                problem = record_problem(batch)
                if problem is not None:
                    malformed.append(problem)
                    continue
                try:
                    await client.post(f"/batches/{batch['id']}:cancel", cast_to=object)
                except openai.NotFoundError:
                    gone.append(batch["id"])
                    continue
                except openai.APIError as exc:
                    message = f"cancelling batch {batch['id']} failed: {exc}"
                    raise FatalAPIError(
                        FetchError(message, kind="fatal"),
                        "pytest's cache keeps its id; try --grok-batch-cancel again",
                    ) from None
                cancelled.append(batch["id"])
    finally:
        await client.close()
    if cache is not None:
        _write(cache, {})
    return cancelled, gone, malformed
