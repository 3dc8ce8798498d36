"""The pytest hooks, each a few lines that delegate to the run object and its modules."""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_grokeval import hookspecs, options, xdist
from pytest_grokeval.collect import marker
from pytest_grokeval.collect.items import SuiteFile
from pytest_grokeval.data import Completion
from pytest_grokeval.prefetch.run import GrokRun
from pytest_grokeval.prefetch.session import prefetch_session, will_run_tests
from pytest_grokeval.recordings.store import DIRNAME
from pytest_grokeval.redaction import OutputGuard
from pytest_grokeval.report import files
from pytest_grokeval.report.terminal import header, summary_lines
from pytest_grokeval.state import RUN_KEY


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Our own hooks (pytest_grokeval_make_client), so conftest files can implement them."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options and ini keys: https://docs.pytest.org/en/stable/reference/reference.html#pytest.hookspec.pytest_addoption"""
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options once, so that a bad value stops pytest before collection."""
    make_client = config.hook.pytest_grokeval_make_client
    run = GrokRun(options.resolve(config), config.rootpath, make_client)
    config.stash[RUN_KEY] = run
    if run.redact.hides_anything:
        # A replay without a key knows no secret: its reports and terminal skip the guard,
        # a hook wrapper around every report.
        config.pluginmanager.register(OutputGuard(run.redact), "grokeval-redaction")
    run.cache = getattr(config, "cache", None)  # batch ids (--grok-batch)
    config.addinivalue_line("markers", marker.MARKER_HELP)
    files.register(config)
    xdist.register(config)


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
    if will_run_tests(session):
        fatal = prefetch_session(session)
        # An xdist worker stops through its WorkerHooks instead: xdist takes exit for Ctrl-C.
        if fatal is not None and not xdist.is_worker(session.config):
            pytest.exit(fatal, returncode=pytest.ExitCode.INTERRUPTED)
    return (yield)


@pytest.fixture
def grok_response(request: pytest.FixtureRequest) -> Completion:
    """The response to this test's ``@pytest.mark.grok(...)`` request, fetched before it ran."""
    return marker.response(request.node)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The grokeval block: requests, tokens, cost, latency, unused recordings, drift."""
    config = terminalreporter.config
    controller = config.pluginmanager.get_plugin(xdist.CONTROLLER)
    if isinstance(controller, xdist.ControllerHooks):
        lines = controller.summary()
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
