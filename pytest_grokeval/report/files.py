"""--grok-report, --grok-html and --grok-baseline: item results in; files and a summary out."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_grokeval import __version__, xdist
from pytest_grokeval.collect import marker
from pytest_grokeval.collect.items import GrokItem
from pytest_grokeval.data import Usage, cost_sum
from pytest_grokeval.jsonfile import clean_text, dumps
from pytest_grokeval.recordings.store import write_atomic
from pytest_grokeval.report.baseline import compare, summary_lines
from pytest_grokeval.report.html import render_html
from pytest_grokeval.report.schema import (
    OUTCOMES,
    REPORT_SCHEMA,
    REPORT_VERSION,
    ReportFileError,
    load_report,
)
from pytest_grokeval.report.terminal import percentile
from pytest_grokeval.state import RUN_KEY

__all__ = ["REPORT_SCHEMA", "ReportsPlugin", "build_document", "register"]

PLUGIN_NAME = "grokeval-reports"


def register(config: pytest.Config) -> None:
    """Register the reports plugin when any of its options is given."""
    settings = config.stash[RUN_KEY].settings
    if not (settings.report or settings.html or settings.baseline):
        return
    # Items run on xdist workers, but only the controller sees every report.
    config.pluginmanager.register(SetupResults(), f"{PLUGIN_NAME}-setup")
    if not xdist.is_worker(config):
        config.pluginmanager.register(ReportsPlugin(config), PLUGIN_NAME)


class SetupResults:
    """Attaches each item's result (suite case or marked test) to its report, which travels
    to the xdist controller.

    Only when a report file was asked for: ten thousand results cost memory. A skipped or
    erroring item has no call report, so its setup report carries the (sample-less) result.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the result to the call report, or to a setup report that did not pass."""
        report = yield
        failed_setup = report.when == "setup" and not report.passed
        if report.when == "call" or failed_setup:
            result: dict[str, Any] | None
            if isinstance(item, GrokItem):
                result = item.result()
            else:
                result = marker.result(item, passed=report.passed)
            if result is not None:
                report.grokeval = result  # type: ignore[attr-defined]
        return report


class ReportsPlugin:
    """Gathers each grokeval item's result and outcome, and writes the reports at the end."""

    def __init__(self, config: pytest.Config) -> None:
        settings = config.stash[RUN_KEY].settings
        self._redact = settings.redactor
        # Relative to where pytest was started, like --junitxml, even if a test changes directory.
        start = config.invocation_params.dir
        self._outputs = [
            (kind, start / path)
            for kind, path in (("JSON", settings.report), ("HTML", settings.html))
            if path is not None
        ]
        self._baseline_path = settings.baseline
        self._baseline: dict[str, Any] | None = None
        if settings.baseline is not None:
            try:
                # The working directory is still the invocation one; messages show the path
                # as the user typed it.
                self._baseline = load_report(settings.baseline)
            except ReportFileError as exc:
                # Before collection, so that a bad baseline costs no API calls.
                raise pytest.UsageError(f"--grok-baseline: {exc}") from None
        self._items: dict[str, dict[str, Any]] = {}
        self._comparison: dict[str, Any] | None = None
        self._written: list[tuple[str, Path]] = []
        self._problems: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each grokeval item's result with how it ended."""
        result = getattr(report, "grokeval", None)
        if result is not None:
            self._items[report.nodeid] = item_entry(result, report)
        elif report.failed and report.nodeid in self._items:
            # A failing teardown makes the item an error, as pytest counts it.
            entry = self._items[report.nodeid]
            message = "\n\n".join(filter(None, [entry["message"], _message(report)]))
            entry.update(outcome="error", message=message)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Compare with the baseline and write the reports, once every item has reported."""
        if session.config.option.collectonly:
            return  # nothing ran: an empty report would only overwrite a useful one
        items = sorted(self._items.values(), key=lambda i: (i["suite"], i["line"], i["id"]))
        if self._baseline is not None:
            self._comparison = compare(self._baseline, items, str(self._baseline_path))
        document = build_document(items, self._comparison, _engine_figures(session.config))
        for kind, path in self._outputs:
            text = render_json(document) if kind == "JSON" else render_html(document)
            text = clean_text(self._redact(text))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, text)
            except OSError as exc:
                self._problems.append(
                    f"grokeval: cannot write the {kind} report {path}: {exc.strerror or exc}"
                )
                # The run's artefact is missing: CI must not go green on it.
                if session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.USAGE_ERROR
            else:
                self._written.append((kind, path))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The baseline comparison and where the reports went, after the grokeval block."""
        tr = terminalreporter
        if self._comparison is not None:
            tr.write_sep("-", "grokeval baseline")
            verbose = tr.config.get_verbosity() > 0
            for line in summary_lines(self._comparison, verbose=verbose):
                tr.write_line(line, red=line.startswith("  regressed"))
        for kind, path in self._written:
            tr.write_sep("-", f"generated grokeval {kind} report: {path}")
        for problem in self._problems:
            tr.write_line(problem, red=True)


def _engine_figures(config: pytest.Config) -> dict[str, Any] | None:
    """The engine's stats of this run: its own, or under xdist those the leader sent."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, xdist.ControllerHooks):
            if not plugin.outputs:
                return None
            stats, counts = plugin.outputs[0]["stats"], plugin.outputs[0]["counts"]
            break
    else:
        run = config.stash[RUN_KEY]
        if not run.prefetched:
            return None
        stats, counts = dataclasses.asdict(run.engine_stats), dataclasses.asdict(run.counts)
    judge = {key.removeprefix("judge_"): counts[key] for key in counts if key.startswith("judge_")}
    return {**stats, "judge": judge}


def item_entry(result: Mapping[str, Any], report: pytest.TestReport) -> dict[str, Any]:
    """One item of the report: the item's own result, how it ended, and what it cost."""
    samples = result["samples"]
    responses = [s["response"] for s in samples if "response" in s]
    costs = [r["cost_usd"] for r in responses]
    known = None not in costs and bool(costs)
    return {
        **result,
        "outcome": outcome(report),
        "message": _message(report),
        "duration_s": round(report.duration, 6),
        "model": responses[0]["model"] if responses else None,
        # null when any response lacks it: the unknown one may be the slowest.
        "latency_ms": _slowest(responses),
        # null when any response lacks the figure: a partial sum would read as the whole.
        "tokens": _tokens(responses) if _usages(responses).count(None) == 0 else None,
        "cost_usd": cost_sum(costs) if known else None,
        "replayed": all(r["replayed"] for r in responses) if responses else None,
        "samples_passed": sum(1 for s in samples if s.get("passed")),
    }


def outcome(report: pytest.TestReport) -> str:
    """passed, failed, skipped, xfailed, xpassed or error, as pytest's summary line counts it."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and report.when != "call":
        return "error"
    return report.outcome


def _message(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail) or None
    longrepr = report.longrepr
    if longrepr is None or report.passed:
        return None
    if isinstance(longrepr, tuple | list):  # a skip: (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    # Not report.longreprtext: under xdist it starts with a line naming the worker.
    return str(longrepr)


def _slowest(responses: Sequence[Mapping[str, Any]]) -> float | None:
    latencies = [r["latency_ms"] for r in responses]
    return None if not latencies or None in latencies else max(latencies)


def _usages(responses: Iterable[Mapping[str, Any]]) -> list[Usage | None]:
    return [Usage.from_json(r["usage"]) for r in responses]


def _tokens(responses: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sums over the responses that reported usage; `unknown` counts those that did not."""
    usages = _usages(responses)
    known = [u for u in usages if u is not None]
    return {
        "prompt": sum(u.prompt_tokens for u in known),
        "output": sum(u.output_tokens for u in known),
        "total": sum(u.total_tokens for u in known),
        "unknown": len(usages) - len(known),
    }


def build_document(
    items: Sequence[dict[str, Any]],
    comparison: dict[str, Any] | None,
    requests: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report, in the documented key order; `requests` are the engine's figures."""
    return {
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "pytest_grokeval": __version__,
        "summary": {**summarize(items), "requests": requests_summary(requests)},
        "baseline": comparison,
        "items": list(items),
    }


def summarize(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over all items, and outcomes per suite file."""
    samples = [s for item in items for s in item["samples"]]
    responses = [s["response"] for s in samples if "response" in s]
    # Identical requests of several items are sent once, so they are counted once.
    distinct = list({s["fingerprint"]: s["response"] for s in samples if "response" in s}.values())
    latencies = [r["latency_ms"] for r in distinct if r["latency_ms"] is not None]
    graders = [j["response"] for s in samples for j in s.get("judge", [])]
    billed = distinct + graders
    suites: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        suites.setdefault(item["suite"], []).append(item)
    return {
        "items": len(items),
        "outcomes": _outcomes(items),
        "pass_rate": _pass_rate(items),
        "samples": len(samples),
        "responses": len(responses),
        "errors": len(samples) - len(responses),
        "replayed": sum(1 for r in responses if r["replayed"]),
        # Grader replies of judge checks included; "judge" shows them apart.
        "tokens": _tokens(billed),
        # The sum of known costs; cost_unknown counts the responses it leaves out.
        **_cost(billed),
        "judge": {"responses": len(graders), "tokens": _tokens(graders), **_cost(graders)},
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1) if latencies else None,
            "p95": round(percentile(latencies, 95), 1) if latencies else None,
            "max": max(latencies) if latencies else None,
            # Percentiles of the known latencies; unknown counts the responses they leave out.
            "unknown": len(distinct) - len(latencies),
        },
        "suites": [
            {
                "suite": suite,
                "items": len(members),
                "outcomes": _outcomes(members),
                "pass_rate": _pass_rate(members),
            }
            for suite, members in suites.items()
        ],
    }


def _cost(responses: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """cost_usd, the sum of known costs, and cost_unknown, how many responses it leaves out."""
    known = [r["cost_usd"] for r in responses if r["cost_usd"] is not None]
    total = cost_sum(known)
    if total is None:  # an overflowing sum: none of its figures can be told apart as known
        return {"cost_usd": 0.0, "cost_unknown": len(responses)}
    return {"cost_usd": total, "cost_unknown": len(responses) - len(known)}


def requests_summary(stats: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What this run sent (null when it sent nothing): attempts and what they may have cost.

    `stats` is the engine's EngineStats as a dict (dataclasses.asdict).
    """
    if not stats or not stats.get("attempts"):
        return None
    judge = stats["judge"]
    return {
        "sent": stats["sent"],
        "attempts": stats["attempts"],
        "retried": stats["retried"],
        "failed": stats["failed"],
        "unsettled": stats["unsettled"],
        "possibly_billed_usd": round(stats["possible_cost_usd"], 8),
        "unpriced": stats["unpriced"],
        "lost": stats["lost"],
        "no_usage": stats["no_usage"],
        "prompt_tokens": stats["prompt_tokens"],
        "output_tokens": stats["output_tokens"],
        "cost_usd": round(stats["cost_usd"], 8),
        # Grader calls of judge checks: part of the figures above, shown apart too.
        "judge": {
            "calls": judge["calls"],
            "prompt_tokens": judge["prompt_tokens"],
            "output_tokens": judge["output_tokens"],
            "cost_usd": round(judge["cost_usd"], 8),
            "unknown": judge["unknown"],
        },
    }


def _outcomes(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for item in items:
        counts[item["outcome"]] += 1
    return counts


def _pass_rate(items: Sequence[Mapping[str, Any]]) -> float | None:
    """Passed over passed, failed and errors: skips and xfail-marked items count neither way."""
    counts = _outcomes(items)
    ran = counts["passed"] + counts["failed"] + counts["error"]
    return round(counts["passed"] / ran, 4) if ran else None


def render_json(document: Mapping[str, Any]) -> str:
    """The --grok-report file: indented, keys in the documented order, non-ASCII kept."""
    return dumps(document, indent=2, ensure_ascii=False) + "\n"
