"""Issue 7.2, replay overhead: a full replay-only `pytest` run against plain pytest.

    .venv/bin/python bench/replay.py [--quick] [--runs 3] [--cases 10000] [--files 100]
                                     [--other PATH]

grok:  N recorded cases in F suite files, `pytest -q --grok-record=none`, no API key, no
       server: every item replays its recording and runs its two string checks.
grok@other: with --other PATH, the same replay by the plugin of the checkout at PATH (its
       .venv), in the same rounds: before/after figures of a change, side by side.
plain: N trivial Python test functions in F files doing the same string checks, with
       `-p no:grokeval` (the plugin is installed in this venv).
An untimed `--co` of the plain project first fills its assertion-rewrite cache (the grok
project is warm from recording it), then the runs interleave.
Targets (issue 7): grok <= 1.3 x plain wall time and <= 1.5 x its peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HERE,
    Checkout,
    Measured,
    machine_note,
    measure,
    median,
    pytest_command,
    pytest_env,
    record_suites,
    revision,
    say,
    table,
    verdict,
    versions,
    write_python_tests,
    write_suites,
)

WALL_TARGET = 1.3
MEMORY_TARGET = 1.5


def run(variant: str, root: Path, n: int, other: Checkout | None) -> Measured:
    if variant.startswith("grok"):
        env = pytest_env(api_key=False)
        checkout = other if variant == "grok@other" and other else HERE
        result = measure(
            pytest_command("-q", "--grok-record=none", checkout=checkout),
            cwd=root / "grok",
            env=env,
        )
        replayed = result.number(r"(\d+) replayed")
        if replayed != n or "XAI_API_KEY" in env:
            raise RuntimeError(
                f"{replayed:g} of {n} replayed; output ends:\n{result.output[-2000:]}"
            )
    else:
        result = measure(
            pytest_command("-q", "-p", "no:grokeval"),
            cwd=root / "plain",
            env=pytest_env(api_key=False),
        )
    if f"{n} passed" not in result.output:
        raise RuntimeError(f"{variant}: expected {n} passed; output ends:\n{result.output[-2000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 cases in 10 files, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="interleaved runs (default 3)")
    parser.add_argument("--cases", type=int, default=None, help="default 10000")
    parser.add_argument("--files", type=int, default=None, help="default 100")
    parser.add_argument(
        "--other",
        type=Path,
        metavar="PATH",
        help="add grok@other: the replay by the plugin of the checkout at PATH, same rounds",
    )
    args = parser.parse_args()
    n = args.cases or (1000 if args.quick else 10_000)
    files = args.files or (10 if args.quick else 100)
    runs = args.runs or (1 if args.quick else 3)
    say(f"# replay overhead: {n} cases in {files} files, {runs} interleaved runs")
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    other = Checkout.at(args.other) if args.other else None
    if other:
        say(f"# grok@other: {revision(args.other)} at {args.other}")
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp:
        root = Path(tmp)
        write_suites(root / "grok", n, files)
        record_suites(root / "grok", n)
        write_python_tests(root / "plain", n, files)
        variants = ["grok", *(["grok@other"] if other else []), "plain"]
        # A user's second run finds its test modules rewritten and cached already.
        measure(
            pytest_command("-q", "--co", "-p", "no:grokeval"),
            cwd=root / "plain",
            env=pytest_env(api_key=False),
        )
        samples: dict[str, list[Measured]] = {variant: [] for variant in variants}
        for _ in range(runs):
            for variant in variants:
                samples[variant].append(run(variant, root, n, other))
    plain = samples["plain"]
    rows, checks = [], []
    for variant in variants:
        ms = samples[variant]
        wall = median([m.wall / p.wall for m, p in zip(ms, plain, strict=True)])
        peak = median([m.peak_mb / p.peak_mb for m, p in zip(ms, plain, strict=True)])
        rows.append(
            [
                variant,
                median([m.wall for m in ms]),
                median([m.cpu for m in ms]),
                median([m.peak_mb for m in ms]),
                wall,
                peak,
                " ".join(f"{m.wall:.2f}" for m in ms),
            ]
        )
        if variant != "plain":
            checks += [
                [variant, "wall time", wall, f"<= {WALL_TARGET}", verdict(wall <= WALL_TARGET)],
                [variant, "peak RSS", peak, f"<= {MEMORY_TARGET}", verdict(peak <= MEMORY_TARGET)],
            ]
    say()
    say(
        table(
            [
                "run",
                "wall s",
                "cpu s",
                "peak RSS MB",
                "x plain wall",
                "x plain RSS",
                "runs (wall s)",
            ],
            rows,
        )
    )
    say()
    say(table(["run", "figure", "ratio to plain", "target", "result"], checks))
    say("\n(ratios are taken run by run against the plain run of the same round, then the median)")
    if args.quick:
        say("--quick is a smoke run: at 1,000 cases fixed costs (startup) decide the ratios")


if __name__ == "__main__":
    main()
