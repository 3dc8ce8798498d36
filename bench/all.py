"""Run the four issue-7 benchmarks one after another (never two at once on a 2-core machine).

    .venv/bin/python bench/all.py [--quick]

Each script's table goes to the terminal and to bench/out/<name>.txt (git-ignored).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("prefetch", "replay", "scale", "rate")


def main() -> int:
    extra = sys.argv[1:]
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    failed = []
    for name in SCRIPTS:
        print(f"\n==== bench/{name}.py {' '.join(extra)}", flush=True)
        began = time.perf_counter()
        with open(out / f"{name}.txt", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(BENCH / f"{name}.py"), *extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
            if process.wait():
                failed.append(name)
        print(f"==== {name}: {time.perf_counter() - began:.0f} s", flush=True)
    print(
        f"\nall: {time.perf_counter() - started:.0f} s" + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
