"""A run's recordings: loaded once per suite file, replayed, recorded, pruned and saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_grokeval.data import ChatRequest, Completion, FetchError
from pytest_grokeval.messages import plural
from pytest_grokeval.options import Settings
from pytest_grokeval.recordings.store import RecordingError, RecordingStore, recordings_path
from pytest_grokeval.state import Collection, Counts


class Recordings:
    """The recording stores of one run; what they replay, miss, drift or fail to save is
    counted in `counts`. Paths in messages are shown through `display` (relative to rootdir)."""

    def __init__(self, settings: Settings, counts: Counts, display: Callable[[Path], str]) -> None:
        self.settings = settings
        self.counts = counts
        self.display = display
        self._stores: dict[Path, RecordingStore | RecordingError] = {}

    def store(self, suite: Path) -> RecordingStore | RecordingError:
        """The recordings of a suite file, loaded once; a broken file is kept as its error."""
        if suite not in self._stores:
            try:
                self._stores[suite] = store = RecordingStore.load(suite, self.settings.redactor)
                self._warn_damaged(store)
            except RecordingError as exc:
                # Named as the user sees it, relative to the rootdir.
                where = str(recordings_path(suite))
                self._stores[suite] = RecordingError(
                    str(exc).replace(where, self.display(Path(where)), 1)
                )
        return self._stores[suite]

    def _warn_damaged(self, store: RecordingStore) -> None:
        for journal, number, what, count in store.damaged:
            more = f" (and {plural(count - 1, 'more damaged line')})" if count > 1 else ""
            self.counts.warnings.append(
                f"{self.display(journal)}:{number}: damaged journal line skipped: {what}{more}; "
                f"its other lines were used, and the journal is kept: mend the line for the "
                f"next run to merge it, or delete the file"
            )

    def stores(self) -> dict[Path, RecordingStore]:
        """The stores that loaded, by suite file."""
        return {p: s for p, s in self._stores.items() if isinstance(s, RecordingStore)}

    def replayed(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int
    ) -> Completion | None:
        """The recorded answer when the mode replays and the request is unchanged."""
        if self.settings.record not in ("none", "new"):
            return None
        found = store.lookup(name, request, slot)
        if found is not None:
            self.counts.replayed += 1
        return found

    def would_replay(self, suite: Path, name: str, request: ChatRequest) -> bool:
        """Whether replay (record mode 'new') will answer this sample without sending it."""
        store = self.store(suite)
        return (
            self.settings.record == "new"
            and isinstance(store, RecordingStore)
            and store.lookup(name, request, request.sample) is not None
        )

    def miss(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int, suite: Path
    ) -> FetchError:
        """The FetchError of kind 'missing' of a sample replay cannot answer."""
        self.counts.missing += 1
        display = self.display(recordings_path(suite))
        message = store.explain_miss(name, request, slot, display)
        if self.settings.record == "none" and self.settings.record_explicit:
            return FetchError(message, kind="missing")
        return FetchError(
            f"{message} (replay only: {self.settings.api_key_env} is not set)", kind="missing"
        )

    def record(
        self, store: RecordingStore, name: str, request: ChatRequest, slot: int, got: Completion
    ) -> None:
        """Keep a response; a model other than the recorded or asked one is noted as drift."""
        before = store.recorded_model(name, slot)
        if before and before != got.model:
            self.counts.drift.append(
                f"{name}: recorded answer came from {before!r}, now from {got.model!r}"
            )
        elif got.model and got.model != request.model:
            self.counts.drift.append(
                f"{name}: asked for {request.model!r}, {got.model!r} answered"
            )
        store.put(name, request, got, slot)

    def prune(self, collection: Collection) -> list[str]:
        """Under rewrite, drop entries that no collected item uses; return what was dropped."""
        dropped: list[str] = []
        for suite, store, unused in self._unused(collection, whole_only=False):
            for key in unused:
                store.drop(key)
                dropped.append(f"{self.display(suite)}::{key[0]} (sample {key[1]})")
        return dropped

    def unused(self, collection: Collection) -> list[str]:
        """Recorded entries no collected item uses, in files whose every item was selected."""
        found: list[str] = []
        for suite, _store, unused in self._unused(collection, whole_only=True):
            for name, sample in unused:
                which = f" sample {sample}" if sample else ""
                found.append(f"{self.display(recordings_path(suite))}: {name!r}{which}")
        return found

    def _unused(
        self, collection: Collection, whole_only: bool
    ) -> list[tuple[Path, RecordingStore, list[tuple[str, int]]]]:
        found = []
        for suite, keys in collection.keys.items():
            if whole_only and not collection.whole(suite):
                continue
            store = self.store(suite)
            if not isinstance(store, RecordingError):
                # An entry that answered a renamed case is in use, whatever its name.
                found.append((suite, store, sorted(store.keys() - keys - store.served)))
        return found

    def release(self) -> None:
        """After the prefetch and save(): drop what the saved stores hold but their keys."""
        for store in self.stores().values():
            if not store.changed:  # a store that could not be saved keeps its changes
                store.release()

    def save(self) -> None:
        """Write each suite's recordings; one that cannot be written is noted, not raised."""
        for suite, store in self.stores().items():
            where = self.display(recordings_path(suite))
            if store.journal_problem is not None:
                self.counts.unsaved.append(f"{where}: not saved as it arrived: "
                                           f"{store.journal_problem}")
            try:
                store.save()
            except (OSError, RecordingError) as exc:
                reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
                self.counts.unsaved.append(f"{where}: cannot save recordings: {reason}")
