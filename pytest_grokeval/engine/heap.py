"""The garbage collector during a prefetch: fewer passes, and none over the session's objects.

A prefetch allocates a few hundred container objects per response (coroutines, futures, the
SDK's request options, the parsed body, the recording's dicts), almost all freed by reference
counting as soon as the response is recorded. With the default threshold (700) the collector
runs 300 times in a 1000-request prefetch, and its full passes walk every object the session
holds: pytest's items and nodes, and the SDK's modules and models imported for the first
request, none of which die meanwhile. Timed with gc.callbacks over bench/prefetch.py's
1000-request prefetch at 64 in flight: 0.15-0.4 s of its 1.6 s of CPU went to the collector
(about 300 passes, 2-3 of them full); with the session's objects frozen and a young generation
ten times larger, 0.04-0.05 s (25 passes, none full).

Frozen objects are only skipped by the collector: reference counting frees them as ever, and
a cycle among them that becomes garbage meanwhile is collected after the prefetch. Objects
frozen by someone else are left alone, and nothing more is frozen then; Python 3.12 starts
with a few hundred frozen, so there only the threshold is raised.
"""

from __future__ import annotations

import gc

# Young objects between two collections while a prefetch runs (Python's default: 700).
YOUNG_THRESHOLD = 7000


class FrozenHeap:
    """Keeps the session's objects out of the collector's passes while entered (once)."""

    def __init__(self) -> None:
        self._frozen = False
        self._thresholds: tuple[int, int, int] | None = None

    def enter(self) -> None:
        """Freeze what exists now, unless something else (a host process) froze objects."""
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self._frozen = True
        young, *older = gc.get_threshold()
        if 0 < young < YOUNG_THRESHOLD:
            self._thresholds = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, *older)

    def refreeze(self) -> None:
        """Freeze what was made since (the SDK imported with the client), if entered."""
        if self._frozen:
            gc.freeze()

    def exit(self) -> None:
        """Give everything frozen since enter() back to the collector, with its thresholds."""
        if self._frozen:
            self._frozen = False
            gc.unfreeze()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
