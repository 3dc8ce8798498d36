"""Issue 16, batch vs real time: the same cases through `--grok-batch` and at `--grok-rpm 600`.

    .venv/bin/python bench/batch.py [-n 1000] [--rpm 600] [--batch-delay 5] [--quick]

One fake server in its own process (latency 50 ms) enforces xAI's rate limit on real-time
requests (rpm/60 per second, answered with 429) and serves the Batch API, whose results are
ready within --batch-delay seconds of being added (a real batch takes minutes to hours: the
wall time of the batch column is the fake's, and says only what the plugin adds to it).
Each mode records N cases into a fresh copy of the suites (`--grok-record=all`):

  wall            the whole pytest run, from a fresh interpreter
  429s            requests the server refused for the rate limit (real time), or batch calls
                  it refused for its add/create limits (batch)
  model requests  real-time chat requests the server received
  cost            the summary's cost: the API's ticks (the fake bills batch at half price)

At 600 rpm, 10,000 cases take about 17 minutes in real time: -n sets the count (default
1,000); the table says what ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PYTHON,
    FakeServer,
    machine_note,
    measure,
    pytest_env,
    say,
    table,
    versions,
    write_suites,
)


def batch_stats(server: FakeServer) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/_fake/batches", timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def one_mode(root: Path, server: FakeServer, n: int, rpm: int, batch: bool) -> dict[str, Any]:
    project = root / ("batch" if batch else "realtime")
    write_suites(project, n, max(1, n // 100))
    server.reset()
    before = batch_stats(server)
    mode = ["--grok-batch"] if batch else [f"--grok-rpm={rpm}"]
    result = measure(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:randomly", "--grok-record=all",
         f"--grok-base-url={server.url}", *mode],
        cwd=project,
        env=pytest_env(api_key=True),
        timeout=max(600.0, 3 * n / max(1, rpm // 60)),
    )
    stats, after = server.stats(), batch_stats(server)
    recorded = sum(
        len(json.loads(path.read_text())["entries"])
        for path in project.glob("__recordings__/*.json")
    )
    if recorded != n:
        raise RuntimeError(f"{project}: {recorded} of {n} cases recorded")
    return {
        "wall": result.wall,
        "429s": stats["rate_limited"] + after["rate_limited"] - before["rate_limited"],
        "model requests": stats["requests"],
        "batches": after["created"] - before["created"],
        "cost": result.number(r"cost \$([\d.]+)"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=None, help="cases (default 1000; 10000 = issue)")
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--batch-delay", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true", help="100 cases")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 1000)
    say(
        f"# batch vs real time: {n} cases, real time at --grok-rpm {args.rpm} against a server "
        f"limit of {max(1, args.rpm // 60)} requests/s; batch results within "
        f"{args.batch_delay:g} s of each add (the fake's, not xAI's)"
    )
    say(f"# {machine_note()}")
    say(f"# {versions()}")
    extra = [
        "--requests-per-second", str(max(1, args.rpm // 60)),
        "--batch-delay", str(args.batch_delay),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="grokeval-bench-") as tmp, FakeServer(
        0.05, *extra
    ) as server:
        for batch in (False, True):
            figures = one_mode(Path(tmp), server, n, args.rpm, batch)
            name = "--grok-batch" if batch else f"--grok-rpm {args.rpm}"
            rows.append([name, figures["wall"], figures["429s"], figures["model requests"],
                         figures["batches"], f"${figures['cost']:.6f}"])
    say(table(["mode", "wall s", "429s", "model requests", "batches", "cost"], rows))


if __name__ == "__main__":
    main()
