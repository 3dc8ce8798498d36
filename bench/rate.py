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

    .venv/bin/python bench/rate.py --hidden-rps 5 [-n 300] [--concurrency 32] [--runs 1]

Issue 15, self-tuning limits: the fake server refuses more than R requests in any second with
xAI's 429 text ("Requests per Second (actual/limit): a/R"); the client is told nothing (no
--grok-rpm) and runs with --grok-max-concurrent 32. From the server's log and counters:

  429 share        the server's rate-limit 429s / every request it received: target <= 3 %
  sustained rate   (answered - R) / (last answer's arrival - first's), of R: target >= 90 %
  outcome          every case must pass
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
HIDDEN_429_TARGET = 0.03
HIDDEN_RATE_TARGET = 0.90


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


def hidden_run(
    project: Path, server: FakeServer, n: int, rps: int, concurrency: int
) -> dict[str, Any]:
    server.reset()
    result, _ = run_pytest(
        project,
        "-q",
        "-p",
        "no:randomly",
        "--grok-record=all",
        f"--grok-base-url={server.url}",
        f"--grok-max-concurrent={concurrency}",
        api_key=True,
        expect=f"{n} passed",
    )
    stats = server.stats()
    answered = [entry["started"] for entry in server.log() if entry["status"] == 200]
    if len(answered) != n:
        raise RuntimeError(f"the server answered {len(answered)} requests, expected {n}")
    figures = analyse(answered, rps)
    learned = [line for line in result.output.splitlines() if line.startswith("learned:")]
    return {
        **figures,
        "requests": stats["requests"],
        "limited": stats["rate_limited"],
        "share": stats["rate_limited"] / stats["requests"],
        "learned": learned[0] if learned else "(nothing learned)",
        "prefetch": result.number(r"prefetch: ([\d.]+)s wall"),
    }


def hidden(args: argparse.Namespace) -> None:
    n = args.n or (60 if args.quick else 300)
    runs = args.runs or 1
    rps, concurrency = args.hidden_rps, args.concurrency
    say(
        f"# self-tuning: {n} cases, a hidden limit of {rps} requests/s the client is not told, "
        f"--grok-max-concurrent {concurrency}, latency 50 ms, {runs} run(s)"
    )
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    extra = ("--requests-per-second", str(rps))
    rows, shares, rates = [], [], []
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp, FakeServer(
        0.05, *extra
    ) as server:
        project = Path(tmp)
        write_suites(project, n, max(1, n // 100))
        for run in range(runs):
            r = hidden_run(project, server, n, rps, concurrency)
            shares.append(r["share"])
            rates.append(r["of_budget"])
            rows.append(
                [run + 1, r["requests"], r["limited"], f"{r['share']:.1%}", r["span"],
                 r["sustained"], f"{r['of_budget']:.1%}", r["busiest"], r["prefetch"],
                 r["learned"]]
            )
    say()
    say(
        table(
            ["run", "requests", "429s", "429 share", "span s", "sustained req/s", "of limit",
             "busiest 1 s window", "prefetch s", "summary line"],
            rows,
        )
    )
    say()
    worst_share, worst_rate = max(shares), min(rates)
    say(
        table(
            ["figure", "value (worst run)", "target", "result"],
            [
                ["429 share of requests", f"{worst_share:.1%}", f"<= {HIDDEN_429_TARGET:.0%}",
                 verdict(worst_share <= HIDDEN_429_TARGET)],
                [f"sustained rate, share of {rps}/s", f"{worst_rate:.1%}",
                 f">= {HIDDEN_RATE_TARGET:.0%}", verdict(worst_rate >= HIDDEN_RATE_TARGET)],
                ["every case passed", "yes", "yes", verdict(True)],
            ],
        )
    )


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
    parser.add_argument(
        "--hidden-rps",
        type=int,
        default=None,
        help="issue 15: a server limit of this many requests/s the client is not told",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="with --hidden-rps")
    args = parser.parse_args()
    if args.hidden_rps:
        hidden(args)
        return
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
