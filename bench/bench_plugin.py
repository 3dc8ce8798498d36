"""A pytest plugin for benchmarks only: `-p bench_plugin` with bench/ on PYTHONPATH.

It changes nothing unless asked, and reports phase figures to a file:

- $GROKEVAL_BENCH_CLIENT names a factory of `_clients.FACTORIES` that this plugin returns from
  the `pytest_grokeval_make_client` hook, so a whole `pytest` run can be measured with a
  proposed client before anyone changes the plugin;
- $GROKEVAL_BENCH_WINDOW_MARGIN sets `budgets.WINDOW_MARGIN` (seconds), for bench/rate.py;
- $GROKEVAL_BENCH_NO_JOURNAL=1 turns off save-as-you-go (`Journal.append` does nothing), to
  measure what the journal costs (bench/prefetch.py's `plugin-nojournal` variant);
- $GROKEVAL_BENCH_STOP_AFTER_PREFETCH=1 skips running the items once the prefetch is done;
- $GROKEVAL_BENCH_PROFILE is a path: cProfile stats of the prefetch phase alone;
- $GROKEVAL_BENCH_OUT is a path: one JSON object with the wall time, CPU time and peak RSS at
  the end of collection and of the prefetch.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

import pytest

import pytest_grokeval.engine.budgets as budgets
from pytest_grokeval.engine.engine import EngineSettings
from pytest_grokeval.prefetch.run import GrokRun
from pytest_grokeval.recordings.journal import Journal

_figures: dict[str, Any] = {}
_started: list[float] = []


def pytest_grokeval_make_client(settings: EngineSettings) -> Any:
    """The client named by $GROKEVAL_BENCH_CLIENT; None keeps the plugin's own."""
    name = os.environ.get("GROKEVAL_BENCH_CLIENT")
    if not name:
        return None
    from _clients import FACTORIES

    return FACTORIES[name](settings)

if os.environ.get("GROKEVAL_BENCH_NO_JOURNAL") == "1":
    Journal.append = lambda self, line: None  # type: ignore[method-assign]

if os.environ.get("GROKEVAL_BENCH_WINDOW_MARGIN"):
    budgets.WINDOW_MARGIN = float(os.environ["GROKEVAL_BENCH_WINDOW_MARGIN"])


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_prefetch(original: Any) -> Any:
    def prefetch(self: GrokRun, *args: Any, **kwargs: Any) -> Any:
        # Whether this prefetch pays for `import openai` (about 1 s) inside its own timer.
        _figures["openai_imported_before"] = "openai" in sys.modules
        profile = os.environ.get("GROKEVAL_BENCH_PROFILE")
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            _figures["prefetch_s"] = time.perf_counter() - wall
            _figures["prefetch_cpu_s"] = time.process_time() - cpu
            _figures["prefetch_peak_mb"] = _peak_mb()

    return prefetch


GrokRun.prefetch = _timed_prefetch(GrokRun.prefetch)  # type: ignore[method-assign]


def pytest_collection(session: pytest.Session) -> None:
    _started[:] = [time.perf_counter(), time.process_time()]


def pytest_collection_finish(session: pytest.Session) -> None:
    _figures["collect_s"] = time.perf_counter() - _started[0]
    _figures["collect_cpu_s"] = time.process_time() - _started[1]
    _figures["collect_peak_mb"] = _peak_mb()
    _figures["items"] = len(session.items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    # grokeval's wrapper has prefetched by the time any plain implementation runs.
    if os.environ.get("GROKEVAL_BENCH_STOP_AFTER_PREFETCH") == "1":
        return True
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("GROKEVAL_BENCH_OUT")
    if out:
        _figures["peak_mb"] = _peak_mb()
        with open(out, "w") as file:
            json.dump(_figures, file)
