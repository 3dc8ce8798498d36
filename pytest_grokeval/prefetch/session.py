"""The session's prefetch: which items it serves, and where it runs (here, or once for xdist)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_grokeval import xdist
from pytest_grokeval.collect import marker
from pytest_grokeval.collect.items import GrokItem, statically_skipped
from pytest_grokeval.data import FetchError
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.engine.heap import freeze_for_session
from pytest_grokeval.hookspecs import ClientHookError
from pytest_grokeval.prefetch.run import BudgetExceeded, CatalogError, GrokRun, Job
from pytest_grokeval.report.terminal import Progress
from pytest_grokeval.state import RUN_KEY


def will_run_tests(session: pytest.Session) -> bool:
    """False under --co, --setup-only, --setup-plan and after a collection error."""
    option = session.config.option
    if option.collectonly or option.setuponly or option.setupplan:
        return False
    return not (session.testsfailed and not option.continue_on_collection_errors)


def prefetch_session(session: pytest.Session) -> str | None:
    """Fetch for every selected item; the message of an error that stops the run, or None."""
    run = session.config.stash[RUN_KEY]
    jobs = jobs_for(session, run)
    fatal = _prefetch(session, run, jobs)
    if jobs and run.settings.gc_freeze:
        # What exists now mostly lives until the session ends (heap.py says why and what for).
        freeze_for_session(session.config.add_cleanup)
    return fatal


def _prefetch(session: pytest.Session, run: GrokRun, jobs: list[Job]) -> str | None:
    run.cache = session.config.cache if hasattr(session.config, "cache") else None
    directory = xdist.shared_dir(session.config)
    if directory is None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        return _fetch(run, jobs, Progress(reporter, quiet=session.config.get_verbosity() < 0))
    try:
        return xdist.fetch_once(
            run, directory, lambda: _fetch(run, jobs, None), xdist.controller_pid(session.config)
        )
    except xdist.FetcherLost as exc:
        lost = FetchError(str(exc), kind="leader")
        lost_all = {(job.key, r.sample): lost for job in jobs for r in job.requests}
        run.results.outcomes.update(lost_all)
        return None


def jobs_for(session: pytest.Session, run: GrokRun) -> list[Job]:
    """The jobs of the selected suite items and marked tests that will not be skipped."""
    items = [i for i in session.items if isinstance(i, GrokItem)]
    marked = [i for i in session.items if i.get_closest_marker("grok") is not None]
    run.collection.select(((item.path, item.name) for item in items), len(items) + len(marked))
    jobs = [item.job() for item in items if not statically_skipped(item)]
    for test in marked:
        if statically_skipped(test):
            continue
        job = marker.job_for(test, run.settings.model, run.settings.api)
        if job is not None:
            jobs.append(job)
    return jobs


def _fetch(run: GrokRun, jobs: Sequence[Job], progress: Progress | None) -> str | None:
    try:
        run.prefetch(jobs, progress)
    except (FatalAPIError, BudgetExceeded, CatalogError, ClientHookError) as exc:
        run.fatal = run.redact(f"grokeval: {exc}")
    return run.fatal
