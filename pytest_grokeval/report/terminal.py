"""What the terminal shows: the header line, the live progress line and the summary block."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import pytest

from pytest_grokeval.engine.engine import EngineStats
from pytest_grokeval.messages import plural
from pytest_grokeval.options import Settings
from pytest_grokeval.state import Counts

# pytest's own "collecting ..." line refreshes at this rate.
PROGRESS_INTERVAL = 0.5


def header(settings: Settings, recordings: str) -> str:
    """One line: mode, model, host, concurrency and where recordings live."""
    why = ""
    if not settings.record_explicit:
        why = f" ({settings.api_key_env} set)" if settings.api_key else (
            f" (no {settings.api_key_env}: replay only)"
        )
    return (
        f"grokeval: record={settings.record}{why}, model={settings.model}, "
        f"base_url={settings.base_host}, max_concurrent={settings.max_concurrent}, "
        f"recordings={recordings}"
    )


def _isatty(reporter: pytest.TerminalReporter) -> bool:
    # pytest < 8.4.1 has `isatty` as a bool attribute; later ones a method (also truthy).
    isatty: object = reporter.isatty
    return bool(isatty() if callable(isatty) else isatty)


class Progress:
    """A throttled one-line display on a terminal; one final line elsewhere; silent under -q."""

    def __init__(self, reporter: pytest.TerminalReporter | None, *, quiet: bool) -> None:
        self._always = reporter
        self._reporter = None if quiet else reporter
        self._tty = reporter is not None and _isatty(reporter)
        self._last = 0.0
        self._shown = False

    def update(self, stats: EngineStats) -> None:
        """Show the engine's counters on the live line."""
        # Called for every response: the line is only made when it will be shown.
        if (reporter := self._due()) is not None:
            self._draw(reporter, self._line(stats))

    def show(self, line: str) -> None:
        """Rewrite the live line with `line`, at most every PROGRESS_INTERVAL, on a terminal."""
        if (reporter := self._due()) is not None:
            self._draw(reporter, line)

    def _due(self) -> pytest.TerminalReporter | None:
        """The reporter when the live line is to be redrawn now, else None."""
        if self._reporter is None or not self._tty:
            return None
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL:
            return None
        self._last = now
        return self._reporter

    def _draw(self, reporter: pytest.TerminalReporter, line: str) -> None:
        reporter.rewrite(f"grokeval: {line}", erase=True, bold=True)
        self._shown = True

    def say(self, text: str) -> None:
        """A line the user must see even under -q (a batch id, how to resume)."""
        if self._always is None:
            return
        self._clear(self._always)
        self._always.write_line(text)

    def finish(self, stats: EngineStats) -> None:
        """The final line: requests fetched, seconds taken, retries and failures."""
        if self._reporter is None:
            return
        self._clear(self._reporter)
        elapsed = time.monotonic() - stats.started
        failed = f", {stats.failed} failed" if stats.failed else ""
        self._reporter.write_line(
            f"grokeval: fetched {stats.done}/{plural(stats.total, 'request')} in {elapsed:.1f}s "
            f"({plural(stats.retried, 'retry', 'retries')}{failed})"
        )

    def _clear(self, writer: pytest.TerminalReporter) -> None:
        """Erase the live line, if one is shown, so that the next text starts a clean line."""
        if self._shown:
            writer.rewrite("", erase=True)
            writer.write("\r")
            self._shown = False

    @staticmethod
    def _line(stats: EngineStats) -> str:
        elapsed = time.monotonic() - stats.started
        paused = stats.paused_until - time.monotonic()
        pause = f", paused {paused:.1f}s (rate limited)" if paused > 0 else ""
        learned = f", learned: {', '.join(stats.learned)}" if stats.learned else ""
        return (
            f"{stats.done}/{stats.total} done, {stats.in_flight} in flight, "
            f"{plural(stats.retried, 'retry', 'retries')}, {elapsed:.1f}s{pause}{learned}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (1 to 100) of `values`, inclusive method; the value itself for one
    value. Raises statistics.StatisticsError when `values` is empty."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def spending_lines(stats: EngineStats, counts: Counts) -> list[str]:
    """Attempts, tokens and cost of what this run sent; unknown figures are said, not zeroed."""
    lines = []
    if stats.unsettled:
        unpriced = f", {stats.unpriced} more of unknown price" if stats.unpriced else ""
        lines.append(
            f"attempts: {stats.attempts}, {stats.unsettled} of unknown cost (timed out, dropped "
            f"after sending, interrupted, or without usage): up to "
            f"${stats.possible_cost_usd:.6f} possibly billed{unpriced}"
        )
    else:
        lines.append(f"attempts: {stats.attempts}")
    unknown = []
    if stats.no_usage:
        unknown.append(f"{plural(stats.no_usage, 'response')} without usage")
    if stats.lost:
        unknown.append(f"{plural(stats.lost, 'attempt')} without a response")
    tokens = f"tokens: {stats.prompt_tokens:,} in, {stats.output_tokens:,} out"
    if unknown and stats.done - stats.failed == stats.no_usage:
        tokens = f"tokens: unknown ({' and '.join(unknown)})"
    elif unknown:
        tokens += f", more unknown ({' and '.join(unknown)})"
    lines.append(f"{tokens}; {_cost_text(stats)}")
    if counts.judge_calls:
        lines.append(_judge_line(counts))
    return lines


def _judge_line(counts: Counts) -> str:
    """The judge's share of the spending: grader calls, tokens in and out, US dollars."""
    if counts.judge_unknown == counts.judge_calls:
        judged = "cost unknown"
    elif counts.judge_unknown:
        known = counts.judge_calls - counts.judge_unknown
        judged = (
            f"cost ${counts.judge_cost_usd:.6f} for {plural(known, 'call')}, "
            f"{counts.judge_unknown} more of unknown cost"
        )
    else:
        judged = f"cost ${counts.judge_cost_usd:.6f}"
    return (
        f"  of which judge: {plural(counts.judge_calls, 'grader call')}, "
        f"{counts.judge_prompt_tokens:,} in, {counts.judge_output_tokens:,} out; {judged}"
    )


def _cost_text(stats: EngineStats) -> str:
    """'cost $X', or what is unknown in it: a bare $0 would hide attempts of unknown cost."""
    if not stats.unsettled:
        return f"cost ${stats.cost_usd:.6f}"
    bounds = []
    if stats.unsettled > stats.unpriced:
        bounds.append(f"up to ${stats.possible_cost_usd:.6f} possibly billed")
    if stats.unpriced:
        bounds.append(f"{stats.unpriced} of unknown price")
    bound = f" ({', '.join(bounds)})"
    if not stats.costed:
        return f"cost unknown{bound}"
    return (
        f"cost ${stats.cost_usd:.6f} for {plural(stats.costed, 'response')}, "
        f"{stats.unsettled} more of unknown cost{bound}"
    )


def summary_lines(
    items: int, counts: Counts, stats: EngineStats, unused: Sequence[str], pruned: Sequence[str]
) -> list[str]:
    """The grokeval block of the terminal summary."""
    lines = [
        f"items: {items}",
        f"requests: {stats.sent} sent, {counts.replayed} replayed, "
        f"{counts.deduplicated} deduplicated, {stats.retried} retried, {stats.failed} failed",
    ]
    if counts.missing:
        lines.append(f"not recorded: {counts.missing} (see the failures for how to record them)")
    if stats.sent:
        lines += spending_lines(stats, counts)
    if stats.latencies_ms:
        lat = stats.latencies_ms
        lines.append(
            f"latency: p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms, "
            f"max {max(lat):.0f} ms"
        )
    lines.append(f"prefetch: {counts.prefetch_seconds:.2f}s wall")
    if stats.learned:
        lines.append(f"learned: {', '.join(stats.learned)} (rate limits the API stated in 429s)")
    for entry in pruned:
        lines.append(f"dropped recording of deleted case {entry}")
    if unused:
        lines.append(
            f"{plural(len(unused), 'unused recording')} (delete with --grok-record=rewrite):"
        )
        lines += [f"  {entry}" for entry in unused]
    for warning in counts.drift:
        lines.append(f"WARNING model drift: {warning}")
    for problem in counts.unsaved:
        lines.append(f"WARNING {problem}")
    for warning in counts.warnings:
        lines.append(f"WARNING {warning}")
    return lines
