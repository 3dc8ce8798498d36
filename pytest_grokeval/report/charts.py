"""The HTML report's charts: inline SVG of latency and pass rate per suite (no scripts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any


def charts(summary: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> str:
    latencies = [
        s["response"]["latency_ms"] for i in items for s in i["samples"] if "response" in s
    ]
    known = [value for value in latencies if value is not None]
    # Unknown latencies have no bar; the caption says how many the chart leaves out.
    missing = len(latencies) - len(known)
    unknown = f", {missing} of unknown latency" if missing else ""
    return (
        '<section class="charts">'
        f"<figure><figcaption>Latency per response{unknown}</figcaption>"
        f"{_histogram(known)}</figure>"
        f"<figure><figcaption>Pass rate per suite</figcaption>{_suite_bars(summary)}</figure>"
        "</section>"
    )


def _histogram(latencies: Sequence[float]) -> str:
    """An SVG histogram of the latencies of every sample's response."""
    if not latencies:
        return '<p class="muted">no responses</p>'
    step = _nice_step(max(latencies) / 10)
    bins = max(1, math.ceil(max(latencies) / step))
    counts = [0] * bins
    for value in latencies:
        counts[min(int(value // step), bins - 1)] += 1
    width, height, left, bottom, top = 520, 200, 34, 30, 10
    plot_w, plot_h = width - left - 16, height - bottom - top
    bar_w, tallest = plot_w / bins, max(counts)

    def y_of(count: int) -> float:
        return top + plot_h - plot_h * count / tallest

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="histogram" '
             'aria-label="latency histogram">']
    for count in sorted({0, tallest // 2, tallest}):
        y = y_of(count)
        parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>{_svg_text(left - 4, y + 4, str(count), "end")}')
    for edge in range(0, bins + 1, math.ceil(bins / 8)):
        parts.append(_svg_text(left + edge * bar_w, height - bottom + 14, f"{edge * step:g}"))
    for index, count in enumerate(counts):
        if count:
            span = f"{ms(index * step)} to {ms((index + 1) * step)}"
            parts.append(
                f'<rect class="bar" x="{left + index * bar_w + 1:.1f}" y="{y_of(count):.1f}" '
                f'width="{max(bar_w - 2, 1):.1f}" height="{top + plot_h - y_of(count):.1f}">'
                f"<title>{span}: {count} response{'s' if count != 1 else ''}</title></rect>"
            )
    caption = f"milliseconds ({len(latencies)} responses)"
    parts.append(_svg_text(left + plot_w / 2, height - 2, caption) + "</svg>")
    return "".join(parts)


def _svg_text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return (f'<text class="axis" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _suite_bars(summary: Mapping[str, Any]) -> str:
    """Per suite, a bar split into passed, failed and the rest, with the pass rate beside it."""
    rows = []
    for suite in summary["suites"]:
        o, total = suite["outcomes"], suite["items"]
        failed = o["failed"] + o["error"]
        segments = "".join(
            f'<span class="seg {cls}" style="width:{100 * n / total:.2f}%" title="{n} {cls}">'
            "</span>"
            for cls, n in (("passed", o["passed"]), ("failed", failed),
                           ("other", total - o["passed"] - failed)) if n
        )
        rate = "-" if suite["pass_rate"] is None else f"{suite['pass_rate']:.0%}"
        rows.append(
            f'<div class="suite-row"><span class="suite-name" title="{escape(suite["suite"])}">'
            f'{escape(suite["suite"])}</span><span class="track">{segments}</span>'
            f'<span class="rate">{rate} <small>({o["passed"]}/{total})</small></span></div>'
        )
    return '<div class="suite-bars">' + "".join(rows) + "</div>" if rows else (
        '<p class="muted">no items</p>'
    )


def ms(value: float | None) -> str:
    """Milliseconds as the report shows them ("1,234 ms"), or "-" when unknown."""
    return "-" if value is None else f"{value:,.0f} ms"
