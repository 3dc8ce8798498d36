"""The pytest hooks, each a few lines that delegate to the run object and its modules."""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from pathlib import Path

import pytest

from . import options
from .engine import FatalAPIError
from .items import RUN_KEY, GrokItem, SuiteFile, statically_skipped
from .recordings import DIRNAME
from .report import Progress, header, summary_lines
from .run import BudgetExceeded, GrokRun


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options and ini keys: https://docs.pytest.org/en/stable/reference/reference.html#pytest.hookspec.pytest_addoption"""
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options once, so that a bad value stops pytest before collection."""
    config.stash[RUN_KEY] = GrokRun(options.resolve(config), config.rootpath)


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
    run.items = len(items)
    for item in items:
        run.selected.setdefault(item.path, set()).add(item.name)
    needs = [need for i in items if not statically_skipped(i) for need in i.needs()]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    progress = Progress(reporter, quiet=session.config.get_verbosity() < 0)
    try:
        run.prefetch(needs, progress)
    except (FatalAPIError, BudgetExceeded) as exc:
        pytest.exit(f"grokeval: {exc}", returncode=pytest.ExitCode.INTERRUPTED)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The grokeval block: requests, tokens, cost, latency, unused recordings, drift."""
    run = terminalreporter.config.stash[RUN_KEY]
    if not run.prefetched or not run.items:
        return
    lines = summary_lines(run.items, run.counts, run.engine_stats, run.unused(), run.pruned)
    terminalreporter.write_sep("-", "grokeval")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the item's result to its report: reports travel to the xdist controller."""
    report = yield
    if isinstance(item, GrokItem) and report.when == "call":
        report.grokeval = item.result()  # type: ignore[attr-defined]
    return report
