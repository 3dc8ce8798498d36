"""The pytest hooks, each a few lines that delegate to the run object and its modules."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_grokeval import hookspecs, options, xdist
from pytest_grokeval.collect import marker
from pytest_grokeval.collect.items import (
    RUN_KEY,
    GrokItem,
    SuiteFile,
    fetch_failure,
    statically_skipped,
)
from pytest_grokeval.data import Completion, FetchError
from pytest_grokeval.engine.engine import EngineStats
from pytest_grokeval.engine.errors import FatalAPIError
from pytest_grokeval.prefetch.run import BudgetExceeded, Counts, GrokRun, Job
from pytest_grokeval.recordings.store import DIRNAME
from pytest_grokeval.report import files
from pytest_grokeval.report.terminal import Progress, header, summary_lines

CONTROLLER = "grokeval-xdist-controller"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Our own hooks (pytest_grokeval_make_client), so conftest files can implement them."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options and ini keys: https://docs.pytest.org/en/stable/reference/reference.html#pytest.hookspec.pytest_addoption"""
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options once, so that a bad value stops pytest before collection."""
    make_client = config.hook.pytest_grokeval_make_client
    config.stash[RUN_KEY] = GrokRun(options.resolve(config), config.rootpath, make_client)
    config.stash[RUN_KEY].cache = getattr(config, "cache", None)  # batch ids (--grok-batch)
    config.addinivalue_line("markers", marker.MARKER_HELP)
    files.register(config)
    distributed = config.pluginmanager.hasplugin("xdist") and config.getoption("dist") != "no"
    if distributed and not xdist.is_worker(config):
        config.pluginmanager.register(xdist.ControllerHooks(), CONTROLLER)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    """Claim YAML files matching grok_files; the file itself decides if it is a suite."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    patterns = parent.config.stash[RUN_KEY].settings.files
    if not any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None
    return SuiteFile.from_parent(parent, path=file_path)


def pytest_report_header(config: pytest.Config) -> str:
    """The run's mode, model, host and concurrency, before anything is sent."""
    run = config.stash[RUN_KEY]
    return header(run.settings, f"{DIRNAME}/ beside each suite")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Fetch every selected item's responses at once, after selection and before any test."""
    if _will_run_tests(session):
        _prefetch(session)
    return (yield)


def _will_run_tests(session: pytest.Session) -> bool:
    option = session.config.option
    if option.collectonly or option.setuponly or option.setupplan:
        return False
    return not (session.testsfailed and not option.continue_on_collection_errors)


def _prefetch(session: pytest.Session) -> None:
    run = session.config.stash[RUN_KEY]
    items = [i for i in session.items if isinstance(i, GrokItem)]
    model = run.settings.model
    marked = [i for i in session.items if i.get_closest_marker("grok") is not None]
    run.items = len(items) + len(marked)
    for item in items:
        run.selected.setdefault(item.path, set()).add(item.name)
    jobs = [item.job() for item in items if not statically_skipped(item)]
    for test in marked:
        job = None if statically_skipped(test) else marker.job_for(test, model)
        if job is not None:
            jobs.append(job)
    directory = xdist.shared_dir(session.config)
    if directory is None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        fatal = _fetch(run, jobs, Progress(reporter, quiet=session.config.get_verbosity() < 0))
    elif xdist.become_leader(directory):
        run.leader = True
        fatal = None
        try:
            with xdist.heartbeat(directory):
                fatal = _fetch(run, jobs, None)
        finally:
            xdist.publish(directory, run.outcomes, run.graded, fatal)
    else:
        fatal = _follow(run, jobs, directory)
    if fatal is not None:
        pytest.exit(fatal, returncode=pytest.ExitCode.INTERRUPTED)


def _fetch(run: GrokRun, jobs: Sequence[Job], progress: Progress | None) -> str | None:
    """Prefetch; an error that stops the whole run comes back as its one-line message."""
    try:
        run.prefetch(jobs, progress)
    except (FatalAPIError, BudgetExceeded) as exc:
        run.fatal = f"grokeval: {exc}"
    return run.fatal


def _follow(run: GrokRun, jobs: Sequence[Job], directory: Path) -> str | None:
    try:
        outcomes, graded, fatal = xdist.wait_for_leader(directory)
    except xdist.LeaderLost as exc:
        lost = FetchError(str(exc), kind="leader")
        outcomes = {(job.key, r.sample): lost for job in jobs for r in job.requests}
        graded, fatal = {}, None
    run.outcomes.update(outcomes)
    run.graded.update(graded)
    return fatal


@pytest.fixture
def grok_response(request: pytest.FixtureRequest) -> Completion:
    """The response to this test's ``@pytest.mark.grok(...)`` request, fetched before it ran."""
    run = request.config.stash[RUN_KEY]
    try:
        wanted = marker.request_for(request.node, run.settings.model)
    except marker.MarkerError as exc:
        pytest.fail(str(exc), pytrace=False)
    if wanted is None:
        pytest.fail("grok_response needs @pytest.mark.grok(prompt=...) on the test", pytrace=False)
    outcome = run.outcome(request.node.nodeid, 0)
    if isinstance(outcome, FetchError):
        pytest.fail(fetch_failure([outcome]), pytrace=False)
    return outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On the xdist leader, hand the summary's figures to the controller."""
    run = session.config.stash[RUN_KEY]
    if xdist.is_worker(session.config) and run.leader:
        session.config.workeroutput[xdist.OUTPUT_KEY] = {  # type: ignore[attr-defined]
            "items": run.items,
            "counts": dataclasses.asdict(run.counts),
            "stats": dataclasses.asdict(run.engine_stats),
            "unused": run.unused(),
            "pruned": run.pruned,
            "fatal": run.fatal,
        }


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The grokeval block: requests, tokens, cost, latency, unused recordings, drift."""
    config = terminalreporter.config
    controller = config.pluginmanager.get_plugin(CONTROLLER)
    if isinstance(controller, xdist.ControllerHooks):
        lines = _merged_summary(controller.outputs)
    else:
        run = config.stash[RUN_KEY]
        if not run.prefetched or not run.items:
            return
        lines = summary_lines(run.items, run.counts, run.engine_stats, run.unused(), run.pruned)
    if not lines:
        return
    terminalreporter.write_sep("-", "grokeval")
    for line in lines:
        terminalreporter.write_line(line)


def _merged_summary(outputs: list[dict[str, Any]]) -> list[str]:
    """The leader's figures, as the controller received them; nothing when no leader ran."""
    if not outputs:
        return []
    data = outputs[0]
    if not data["items"]:
        return []
    lines = summary_lines(
        data["items"],
        Counts(**data["counts"]),
        EngineStats(**data["stats"]),
        data["unused"],
        data["pruned"],
    )
    if data["fatal"]:
        lines.append(data["fatal"])
    return lines
