"""Issue 7.4, rate budget: `--grok-rpm 600` uses the budget and never exceeds it.

    .venv/bin/python bench/rate.py [--quick] [--runs 2] [-n 300] [--rpm 600] [--margin S ...]

One `pytest -q --grok-record=all --grok-rpm RPM` over N cases against the fake server
(latency 50 ms, the default --grok-max-concurrent 4). The server's own log gives the arrival
time of every request; from those alone:

  budget B         RPM / 60 requests in any one-second window (how xAI enforces rpm)
  busiest window   the most arrivals in any window [t, t + 1 s), t any arrival: must be <= B
  tightest span    min over i of t[i + B] - t[i]: the budget holds iff it is >= 1 s
  sustained rate   (N - B) / (t[N-1] - t[0]): the first B may go at once, the rest are paced
  of budget        sustained rate / B: target >= 95 %

--margin S adds a what-if run per value with `budgets.WINDOW_MARGIN` set to S seconds
(bench_plugin.py), to choose the margin by data: 1 s + margin - tightest span is how much of
the margin the jitter between the client's stamp and the server's arrival actually used.
--client NAME runs every variant with a bench/_clients.py factory instead of the plugin's.
"""

from __future__ import annotations

import argparse
import bisect
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FakeServer,
    machine_note,
    median,
    run_pytest,
    say,
    table,
    verdict,
    versions,
    write_suites,
)

TARGET = 0.95


def analyse(arrivals: list[float], budget: int) -> dict[str, float]:
    times = sorted(arrivals)
    n = len(times)
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    tightest = min((times[i + budget] - times[i] for i in range(n - budget)), default=float("inf"))
    span = times[-1] - times[0]
    sustained = (n - budget) / span if span > 0 else float("inf")
    return {
        "busiest": busiest,
        "tightest": tightest,
        "span": span,
        "sustained": sustained,
        "of_budget": sustained / budget,
    }


def one_run(
    project: Path, server: FakeServer, n: int, rpm: int, margin: float | None, client: str | None
) -> dict[str, Any]:
    server.reset()
    env_margin = {} if margin is None else {"GROKEVAL_BENCH_WINDOW_MARGIN": str(margin)}
    result, _ = run_pytest(
        project,
        "-q",
        "--grok-record=all",
        f"--grok-base-url={server.url}",
        f"--grok-rpm={rpm}",
        api_key=True,
        client=client,
        stop_after_prefetch=True,
        extra_env=env_margin,
    )
    log = [entry for entry in server.log() if entry["status"] == 200]
    if len(log) != n:
        raise RuntimeError(f"the server answered {len(log)} requests, expected {n}")
    figures = analyse([entry["started"] for entry in log], max(1, rpm // 60))
    figures["prefetch"] = result.number(r"prefetch: ([\d.]+)s wall")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 requests, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs per variant (default 2)")
    parser.add_argument("-n", type=int, default=None, help="requests (default 300)")
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--client", default=None, help="a bench/_clients.py factory (what-if)")
    parser.add_argument(
        "--margin",
        type=float,
        nargs="*",
        default=[],
        help="what-if values of budgets.WINDOW_MARGIN, in seconds",
    )
    args = parser.parse_args()
    n = args.n or (60 if args.quick else 300)
    runs = args.runs or (1 if args.quick else 2)
    budget = max(1, args.rpm // 60)
    try:
        from pytest_grokeval.engine.budgets import WINDOW_MARGIN as current
    except ImportError:
        current = float("nan")
    say(
        f"# rate budget: {n} requests, --grok-rpm {args.rpm} (B = {budget} per second), "
        f"latency 50 ms, {runs} runs per variant; budgets.WINDOW_MARGIN = {current} s; "
        f"client {args.client or 'default'}"
    )
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    variants: list[float | None] = [None, *args.margin]
    samples: dict[float | None, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp, FakeServer(0.05) as server:
        project = Path(tmp)
        write_suites(project, n, max(1, n // 100))
        for _ in range(runs):
            for variant in variants:
                samples[variant].append(one_run(project, server, n, args.rpm, variant, args.client))
    ideal = (n - budget) / budget
    rows, summary = [], []
    for variant in variants:
        runs_of = samples[variant]
        name = "plugin" if variant is None else f"plugin, margin {variant:g} s"
        busiest = max(r["busiest"] for r in runs_of)
        tightest = min(r["tightest"] for r in runs_of)
        of_budget = median([r["of_budget"] for r in runs_of])
        rows.append(
            [
                name,
                median([r["prefetch"] for r in runs_of]),
                median([r["span"] for r in runs_of]),
                ideal,
                median([r["sustained"] for r in runs_of]),
                f"{of_budget:.1%}",
                busiest,
                tightest,
            ]
        )
        summary += [
            [
                name,
                "sustained rate, share of budget",
                f"{of_budget:.1%}",
                f">= {TARGET:.0%}",
                verdict(of_budget >= TARGET),
            ],
            [
                name,
                "busiest 1 s window (worst run)",
                busiest,
                f"<= {budget}",
                verdict(busiest <= budget),
            ],
        ]
    say()
    say(
        table(
            [
                "variant",
                "prefetch s",
                "span s",
                "ideal span s",
                "sustained req/s",
                "of budget",
                "busiest 1 s window",
                "tightest span s",
            ],
            rows,
        )
    )
    say()
    say(table(["variant", "figure", "value", "target", "result"], summary))
    say(
        "\n(sustained, span: medians; busiest window and tightest span: the worst of all runs;"
        f"\n the ideal span sends {budget} at once every second: {ideal:g} s)"
    )
    if args.quick:
        say("--quick is a smoke run: over 5 windows the startup weighs on the share of budget")


if __name__ == "__main__":
    main()
