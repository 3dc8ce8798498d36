"""The garbage collector during a prefetch and the tests after it: no passes over the session.

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

After the prefetch, `freeze_for_session` keeps what then exists (modules, items, the
recordings and responses) frozen until pytest's config cleanup, for the same reason: the tests
that follow allocate, the collector's full passes would walk that whole heap again and again,
and almost none of it dies before the session ends. Timed with gc.callbacks over a replay of
bench/replay.py's 10,000 cases (one run each): the full passes from the prefetch to pytest's
cleanup took 1.06 s, and 0.68 s with the session frozen; the whole run took 7-8 s.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

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


def freeze_for_session(add_cleanup: Callable[[Callable[[], None]], None]) -> bool:
    """Freeze what exists now; `add_cleanup` (pytest's config.add_cleanup) gets the unfreeze.

    Returns whether it froze: not when the collector is disabled or when objects are frozen
    already (by a host process, or by Python 3.12 at start), as FrozenHeap does. Meanwhile
    gc.get_objects() and gc.get_referrers() do not list the frozen objects, and a reference
    cycle among them that becomes garbage is freed at the unfreeze; reference counting frees
    everything else as ever. ini grok_gc_freeze = false turns it off (options.py).
    """
    if gc.get_freeze_count() or not gc.isenabled():
        return False
    gc.freeze()
    add_cleanup(gc.unfreeze)
    return True
