"""Issue 7.1, prefetch efficiency: the plugin's prefetch against the ten-line baseline.

    .venv/bin/python bench/prefetch.py [--quick] [--all-variants] [--runs 3]
                                       [--concurrency 2 16 64 256] [--variants NAME ...]

N cases, every request answered by the fake server (a separate process) after --latency s.
Per concurrency C, interleaved A, B, A, B... in fresh processes:

  baseline          bench/baseline_gather.py (AsyncOpenAI + Semaphore + gather), its own timer
  plugin            `pytest --grok-record=all`, the "prefetch: X s wall" line of the summary
                    (the run stops after the prefetch: bench/bench_plugin.py)
  plugin@other      with --other PATH: the plugin of the checkout at PATH (its .venv), in
                    the same rounds, against the same server and baseline
  plugin-nojournal  with --journal-cost: the same run with save-as-you-go turned off, to
                    measure what journaling each response as it arrives costs (issue 11)
  plugin+<client>   with --all-variants: the same pytest run, its client made by a
                    bench/_clients.py factory through the pytest_grokeval_make_client hook
  engine:<client>   with --all-variants: Engine.run driven directly with each client factory,
                    `import openai` done before the timer: the per-request cost of each client

At C <= 2 only baseline and plugin run (2 runs each, 25 s a run): the clients cannot differ much
when every slot waits 50 ms per request.

Ratios are taken run by run against the baseline of the same round, then the median is shown.
Targets (issue 7): plugin <= 1.05 x baseline at C = 2 and 16, <= 0.75 x at C = 64 and 256.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    API_KEY,
    BENCH,
    HERE,
    MODEL,
    PYTHON,
    Checkout,
    FakeServer,
    machine_note,
    measure,
    median,
    prompt,
    revision,
    run_pytest,
    say,
    table,
    verdict,
    versions,
    write_suites,
)

TARGETS = {2: 1.05, 16: 1.05, 64: 0.75, 256: 0.75}
# With --all-variants: the same pytest run with the client swapped, and Engine.run alone.
# `sdk-httpx2-typed` is the plugin's client before issue 7; see bench/_clients.py.
PYTEST_CLIENTS = ("sdk-httpx2-typed", "sdk-aiohttp-typed", "sdk-aiohttp-post")
ENGINE_CLIENTS = (
    "sdk-httpx2-typed",
    "sdk-aiohttp-typed",
    "sdk-httpx2-post",
    "sdk-aiohttp-post",
    "lean-aiohttp",
)


# -- the engine worker: one Engine.run in a fresh process ------------------------------------


def engine_worker(client: str, url: str, n: int, concurrency: int, profile: str | None) -> None:
    from _clients import FACTORIES

    from pytest_grokeval.data import ChatRequest
    from pytest_grokeval.engine.engine import Engine, EngineSettings

    requests = [
        ChatRequest(model=MODEL, messages=({"role": "user", "content": prompt(i)},))
        for i in range(n)
    ]
    settings = EngineSettings(base_url=url, api_key=API_KEY, max_concurrent=concurrency)
    engine = Engine(settings, client_factory=FACTORIES[client])
    import openai  # noqa: F401  (outside the timer: these runs compare per-request costs)

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu, started = time.process_time(), time.perf_counter()
    results = asyncio.run(engine.run(requests))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    failed = [r for r in results.values() if not hasattr(r, "text")]
    assert len(results) == n and not failed, f"{len(failed)} failed, e.g. {failed[:1]}"
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu}), flush=True)


# -- the driver ---------------------------------------------------------------------------------


def run_variant(
    variant: str, server: FakeServer, project: Path, n: int, c: int, other: Checkout | None
) -> dict[str, Any]:
    """One measured run; returns wall (the phase's own timer), cpu and server-side figures."""
    server.reset()
    server_cpu = server.cpu_seconds()
    if variant == "baseline":
        result = measure(
            [
                PYTHON,
                str(BENCH / "baseline_gather.py"),
                "--base-url",
                server.url,
                "-n",
                str(n),
                "-c",
                str(c),
            ]
        )
        figures = result.json_line()
    elif variant.startswith("engine:"):
        result = measure(
            [
                PYTHON,
                str(Path(__file__).resolve()),
                "--engine-worker",
                variant.split(":", 1)[1],
                "--url",
                server.url,
                "-n",
                str(n),
                "-c",
                str(c),
            ],
            cwd=BENCH,
        )
        figures = result.json_line()
    else:
        client = variant.split("+", 1)[1] if "+" in variant else None
        no_journal = {"GROKEVAL_BENCH_NO_JOURNAL": "1"} if variant == "plugin-nojournal" else {}
        # Stopped after the prefetch: running the items is replay.py's subject, not this one's.
        result, phases = run_pytest(
            project,
            "-q",
            "--grok-record=all",
            f"--grok-base-url={server.url}",
            f"--grok-max-concurrent={c}",
            api_key=True,
            client=client,
            stop_after_prefetch=True,
            extra_env=no_journal,
            checkout=other if variant == "plugin@other" and other else HERE,
        )
        if phases.get("items") != n:
            raise RuntimeError(f"{variant}: collected {phases.get('items')} items, not {n}")
        figures = {
            "wall": result.number(r"prefetch: ([\d.]+)s wall"),
            "cpu": phases["prefetch_cpu_s"],
            "imports_sdk": not phases["openai_imported_before"],
        }
    stats = server.stats()
    if stats["requests"] != n:
        raise RuntimeError(f"{variant}: the server saw {stats['requests']} requests, not {n}")
    figures["peak_in_flight"] = stats["peak_in_flight"]
    figures["server_cpu"] = server.cpu_seconds() - server_cpu
    figures["process_wall"] = result.wall
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 cases, C = 64, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs per variant (default 3)")
    parser.add_argument(
        "--runs-c2",
        type=int,
        default=2,
        help="runs per variant at C <= 2, 25 s each at N = 1000 (default 2)",
    )
    parser.add_argument(
        "--all-variants",
        action="store_true",
        help="add the plugin+<client> and engine:<client> variants (clients compared)",
    )
    parser.add_argument(
        "--journal-cost",
        action="store_true",
        help="add plugin-nojournal: the plugin with save-as-you-go off, beside the plugin",
    )
    parser.add_argument(
        "--other",
        type=Path,
        metavar="PATH",
        help="add plugin@other: the plugin of the checkout at PATH, in the same rounds",
    )
    parser.add_argument("-n", type=int, default=None, help="cases (default 1000)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=None)
    parser.add_argument(
        "--variants", nargs="+", default=None, help="run these variants only, at every C"
    )
    parser.add_argument("--engine-worker", metavar="CLIENT", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("-c", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="with --engine-worker: write cProfile stats here")
    args = parser.parse_args()
    if args.engine_worker:
        engine_worker(args.engine_worker, args.url, args.n, args.c, args.profile)
        return

    n = args.n or (200 if args.quick else 1000)
    runs = args.runs or (1 if args.quick else 3)
    levels = args.concurrency or ([64] if args.quick else [2, 16, 64, 256])
    other = Checkout.at(args.other) if args.other else None
    every = ["baseline", "plugin"] + (["plugin@other"] if other else [])
    if args.journal_cost:
        every.insert(1, "plugin-nojournal")
    if args.all_variants:
        every += [f"plugin+{c}" for c in PYTEST_CLIENTS]
        every += [f"engine:{c}" for c in ENGINE_CLIENTS]
    say(
        f"# prefetch efficiency: {n} cases, latency {args.latency * 1000:.0f} ms, "
        f"{runs} interleaved runs per variant ({min(runs, args.runs_c2)} at C <= 2)"
    )
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    if other:
        say(f"# plugin@other: {revision(args.other)} at {args.other}")
    summary: list[list[object]] = []
    with (
        tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp,
        FakeServer(args.latency) as server,
    ):
        project = Path(tmp)
        write_suites(project, n, 10)
        for c in levels:
            variants = args.variants or every
            level_runs = runs
            if c <= 2 and not args.variants:
                # Latency-bound, 25 s a run at N = 1000: a faster client gains little here.
                variants, level_runs = every[:3 if other else 2], min(runs, args.runs_c2)
            ideal = math.ceil(n / c) * args.latency
            samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for _ in range(level_runs):
                for variant in variants:
                    samples[variant].append(run_variant(variant, server, project, n, c, other))
            say(
                f"\nC = {c}: ideal ceil(N/C) x latency = {ideal:.2f} s; baseline `import openai` "
                f"{median([b['import_s'] for b in samples['baseline']]):.2f} s (not in its wall)"
            )
            rows = []
            for variant in variants:
                runs_of = samples[variant]
                walls = [s["wall"] for s in runs_of]
                # A prefetch that imports the SDK inside its timer is compared with the
                # baseline's import + requests; one that does not, with its requests alone.
                ratios = [
                    s["wall"] / (b["wall"] + (b["import_s"] if s.get("imports_sdk") else 0))
                    for s, b in zip(runs_of, samples["baseline"], strict=True)
                ]
                imports = {"yes" if s.get("imports_sdk") else "no" for s in runs_of}
                rows.append(
                    [
                        variant,
                        median(walls),
                        median(walls) / ideal,
                        median(ratios),
                        median([s["cpu"] for s in runs_of]) / n * 1000,
                        "/".join(sorted(imports)),
                        median([s["server_cpu"] for s in runs_of]),
                        int(median([s["peak_in_flight"] for s in runs_of])),
                        " ".join(f"{w:.2f}" for w in walls),
                    ]
                )
                if variant.startswith("plugin"):
                    target = TARGETS.get(c)
                    ok = target is not None and median(ratios) <= target
                    summary.append(
                        [
                            c,
                            variant,
                            median(walls),
                            median([s["wall"] for s in samples["baseline"]]),
                            ideal,
                            median(ratios),
                            f"<= {target}" if target else "-",
                            verdict(ok) if target else "-",
                        ]
                    )
            say(
                table(
                    [
                        "variant",
                        "wall s",
                        "x ideal",
                        "x baseline",
                        "cpu ms/req",
                        "SDK import in wall",
                        "server cpu s",
                        "peak in flight",
                        "runs (wall s)",
                    ],
                    rows,
                )
            )
    say("\n# summary: the plugin's prefetch wall time against the baseline (medians)")
    if args.quick:
        say("# --quick is a smoke run: at 200 cases one-off costs (imports) decide the ratios")
    say(
        table(
            [
                "C",
                "variant",
                "prefetch s",
                "baseline requests s",
                "ideal s",
                "ratio",
                "target",
                "result",
            ],
            summary,
        )
    )
    say(
        "\n(cpu ms/req: the process's CPU time in the timed phase over N, one-off costs included;"
        "\n x baseline: per round, against the baseline's requests, plus its `import openai`"
        "\n when the variant imports the SDK inside its own timer, as the plugin does)"
    )


if __name__ == "__main__":
    main()
