"""What batch mode keeps between runs, in pytest's cache: per request set, each batch's id,
the ids added to it, and the results token read up to."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pytest_grokeval.data import ChatRequest, FetchError
from pytest_grokeval.engine.errors import FatalAPIError

if TYPE_CHECKING:
    import openai

CACHE_KEY = "grokeval/batch"


class Cache(Protocol):
    """pytest's `config.cache`, as far as batch mode uses it."""

    def get(self, key: str, default: Any) -> Any: ...

    def set(self, key: str, value: object) -> None: ...


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
        return {"id": self.batch_id, "added": sorted(self.added), "token": self.token}


def request_set_key(requests: Iterable[ChatRequest], base_url: str) -> str:
    """A short hash naming a run's request set at a base URL: the cache key of its batches."""
    digest = hashlib.sha256(base_url.encode())
    for fingerprint in sorted({r.fingerprint for r in requests}):
        digest.update(fingerprint.encode())
    return digest.hexdigest()[:16]


class Stored:
    """The cache entry of one request set (`key`); without a cache, nothing is kept."""

    def __init__(self, cache: Cache | None, key: str) -> None:
        self.cache = cache
        self.key = key

    def load(self, role: str) -> Batch | None:
        """The batch an earlier run left for `role`, if the cache names one."""
        if self.cache is None:
            return None
        entry = self.cache.get(CACHE_KEY, {}).get(self.key)
        data = entry.get(role) if isinstance(entry, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        token = data.get("token")
        added = data.get("added")
        return Batch(
            role,
            data["id"],
            {str(a) for a in added} if isinstance(added, list) else set(),
            token if isinstance(token, str) else None,
        )

    def save(self, batches: Iterable[Batch]) -> None:
        """Store these batches, keeping the stored roles this run has not opened (yet)."""
        if self.cache is None:
            return
        stored = self.cache.get(CACHE_KEY, {})
        entry = stored.get(self.key)
        roles = dict(entry) if isinstance(entry, dict) else {}
        roles.update({b.role: b.to_json() for b in batches})
        stored[self.key] = roles
        self.cache.set(CACHE_KEY, stored)

    def drop(self, role: str) -> None:
        """Forget the batch stored for `role` (cancelled, or gone at the server)."""
        if self.cache is None:
            return
        stored = self.cache.get(CACHE_KEY, {})
        entry = stored.get(self.key)
        if isinstance(entry, dict) and entry.pop(role, None) is not None:
            self.cache.set(CACHE_KEY, stored)

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

    def forget(self) -> None:
        """Drop this request set's entry: its batches are read to the end."""
        if self.cache is None:
            return
        stored = self.cache.get(CACHE_KEY, {})
        if stored.pop(self.key, None) is not None:
            self.cache.set(CACHE_KEY, stored)


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
) -> tuple[list[str], list[str]]:
    """Cancel every batch this checkout's cache holds and forget them.

    Returns (cancelled ids, ids the server no longer knows: 404, forgotten all the same).
    Raises FatalAPIError when the server refuses otherwise; the cache is kept then.
    """
    import openai

    stored: dict[str, Any] = cache.get(CACHE_KEY, {}) if cache is not None else {}
    cancelled: list[str] = []
    gone: list[str] = []
    try:
        for entry in stored.values():
            for batch in entry.values() if isinstance(entry, dict) else ():
                if isinstance(batch, dict) and isinstance(batch.get("id"), str):
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
        cache.set(CACHE_KEY, {})
    return cancelled, gone
