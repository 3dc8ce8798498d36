"""Issue 7.3, scale: collection and prefetch of 10,000 and 50,000 cases grow linearly.

    .venv/bin/python bench/scale.py [--quick] [--runs 1] [--cases 10000 50000] [--client NAME]

Each run is one `pytest -q --grok-record=all` in a fresh process against the fake server
(latency 0, --grok-max-concurrent 64), stopped once the prefetch is done (bench_plugin.py),
which reports the wall time, CPU time and peak RSS at the end of collection and of prefetch.
Suites hold 100 cases each, so 10,000 cases are 100 files and 50,000 are 500.

Growth is linear when the marginal cost per case between the two points is no more than the
average cost per case at the smaller point (fixed costs such as imports make the average the
larger one); "super-linear" is flagged when the marginal cost exceeds it by 25 %.

--client picks the HTTP client of the prefetch (bench/_clients.py). The default, lean-aiohttp,
keeps a 50,000-request run near a minute and isolates what the plugin itself does per case
(collection, jobs, engine bookkeeping, checks, recordings); the SDK's cost per request is a
constant, measured by bench/prefetch.py. `--client plugin` uses the plugin's own client.
One run by default (about 2 minutes); --runs 2 takes twice as long.

`--vars N` measures instead how collection scales with `vars` (issue 13): one file holding
one case whose two var lists make N items, against one file of N separate cases, both with
a `{{placeholder}}` in their checks; `pytest --co` in a fresh process, no key, no network.
Target: the vars file within 1.3x of the separate cases.
"""

from __future__ import annotations

import argparse
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

PER_FILE = 100
SUPERLINEAR = 1.25
FIGURES = [
    ("collect_s", "collection wall s"),
    ("collect_cpu_s", "collection cpu s"),
    ("collect_peak_mb", "peak RSS after collection MB"),
    ("prefetch_s", "prefetch wall s"),
    ("prefetch_cpu_s", "prefetch cpu s"),
    ("prefetch_peak_mb", "peak RSS after prefetch MB"),
]


def one_run(project: Path, n: int, server: FakeServer, client: str | None) -> dict[str, Any]:
    server.reset()
    _, phases = run_pytest(
        project,
        "-q",
        "--grok-record=all",
        f"--grok-base-url={server.url}",
        "--grok-max-concurrent=64",
        api_key=True,
        client=client,
        stop_after_prefetch=True,
    )
    sent = server.stats()["requests"]
    if phases.get("items") != n or sent != n:
        raise RuntimeError(f"{n} cases: {phases.get('items')} items, {sent} requests")
    return phases


VARS_TARGET = 1.3


def write_vars_projects(root: Path, n: int) -> tuple[Path, Path]:
    """One file of N separate cases, and one file of one case whose vars make N items."""
    side = max(2, round(n**0.5))
    while n % side:
        side -= 1
    plain, product = root / "plain", root / "vars"
    for folder in (plain, product):
        folder.mkdir(parents=True)
        (folder / "pytest.ini").write_text("[pytest]\n")
    lines = ["cases:"]
    for i in range(n):
        lines += [
            f"  - id: case-{i}",
            f"    prompt: Say n{i:06d}",
            f"    expect: {{contains: n{i:06d}, starts_with: You said}}",
        ]
    (plain / "test_plain.yaml").write_text("\n".join(lines) + "\n")
    a = ", ".join(f"a{i}" for i in range(side))
    b = ", ".join(f"b{i}" for i in range(n // side))
    (product / "test_vars.yaml").write_text(
        "cases:\n  - id: product\n    prompt: Say {{a}} {{b}}\n"
        f"    vars: {{a: [{a}], b: [{b}]}}\n"
        '    expect: {contains: "{{a}} {{b}}", starts_with: You said}\n'
    )
    return plain, product


def vars_main(n: int, runs: int) -> None:
    say(f"# scale of vars: {n:,} items from one case vs {n:,} cases, {runs} interleaved runs")
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    times: dict[str, list[float]] = {"plain": [], "vars": []}
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp:
        projects = dict(zip(("plain", "vars"), write_vars_projects(Path(tmp), n), strict=True))
        for _ in range(runs):
            for name, project in projects.items():
                _, phases = run_pytest(project, "--co", "-q", api_key=False)
                if phases.get("items") != n:
                    raise RuntimeError(f"{name}: {phases.get('items')} items, wanted {n}")
                times[name].append(phases["collect_s"])
    plain, product = median(times["plain"]), median(times["vars"])
    say()
    headers = ["collection wall s", f"{n:,} cases", f"1 case, {n:,} items", "ratio"]
    say(table(headers, [["median", plain, product, product / plain]]))
    within = verdict(product <= VARS_TARGET * plain)
    say(f"\nvars within {VARS_TARGET}x of separate cases: {within}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 cases, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="interleaved runs (default 1)")
    parser.add_argument("--cases", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"))
    parser.add_argument(
        "--client",
        default="lean-aiohttp",
        help="a bench/_clients.py factory, or 'plugin' (default lean-aiohttp)",
    )
    parser.add_argument(
        "--vars",
        type=int,
        default=None,
        metavar="N",
        help="compare N items from one case's vars with N separate cases",
    )
    args = parser.parse_args()
    if args.vars:
        vars_main(args.vars, args.runs or 3)
        return
    small, large = args.cases or ((1000, 5000) if args.quick else (10_000, 50_000))
    runs = args.runs or 1
    client = None if args.client == "plugin" else args.client
    say(
        f"# scale: {small:,} and {large:,} cases ({PER_FILE} per file), {runs} interleaved runs, "
        f"prefetch client {args.client}, latency 0, --grok-max-concurrent 64"
    )
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    samples: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp, FakeServer(0.0) as server:
        projects = {}
        for n in (small, large):
            projects[n] = Path(tmp) / f"cases-{n}"
            write_suites(projects[n], n, max(1, n // PER_FILE))
        for _ in range(runs):
            for n in (small, large):
                samples[n].append(one_run(projects[n], n, server, client))
    rows = []
    for key, label in FIGURES:
        a = median([s[key] for s in samples[small]])
        b = median([s[key] for s in samples[large]])
        average = a / small * 1000
        marginal = (b - a) / (large - small) * 1000
        rows.append(
            [
                label,
                a,
                b,
                b / a,
                average,
                marginal,
                "super-linear" if marginal > SUPERLINEAR * average else "linear",
            ]
        )
    say()
    say(
        table(
            [
                "figure",
                f"{small:,} cases",
                f"{large:,} cases",
                "ratio",
                "per 1k cases (small)",
                f"per 1k cases ({small // 1000}k->{large // 1000}k)",
                "growth",
            ],
            rows,
        )
    )
    ok = all(row[-1] == "linear" for row in rows)
    say(f"\nlinear growth of wall time and peak memory: {verdict(ok)}")
    if not ok and runs == 1:
        say("(one run each: repeat with --runs 2 before believing a flag; collection times vary")
        say(" by 30 % from run to run here, with the cyclic GC's full collections)")
    say("(peak RSS after prefetch is the process's peak: items are not run)")


if __name__ == "__main__":
    main()
