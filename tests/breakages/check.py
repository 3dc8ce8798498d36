"""Break each behaviour of breakages.toml in a copy of the package; its tests must then fail.

    python tests/breakages/check.py [NAME ...] [-j JOBS] [--timeout SECONDS] [--list]

The package, tests and pyproject.toml are copied into a temporary folder, once unchanged and
once per breakage with its text substitution applied; the working tree is never edited, so an
interrupted run leaves nothing behind. Every pytest process of a run (the run itself, pytester
subprocesses, xdist workers) loads a probe plugin through PYTEST_PLUGINS that logs which
`pytest_grokeval` it imported: a run that imported any other copy is an error.

Per breakage: "caught" (every named test failed), "MISSED" (one passed: the test is weak) or
"stale" (the text is not found exactly once, or a named test no longer exists). The unchanged
copy must pass every named test first, else a failure under a breakage proves nothing.
Exit status 0 only when every breakage is caught.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("breakages.toml")
COPIED = ("pytest_grokeval", "tests", "pyproject.toml")
PROBE_MODULE = "grokeval_breakage_probe"
PROBE = """
import os


def pytest_configure(config):
    import pytest_grokeval

    with open(os.environ["GROKEVAL_BREAKAGE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()}\\t{pytest_grokeval.__file__}\\n")
"""
# `-rA` lists every test with its outcome, the node id second: what a run is judged on.
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+)")
# pytest runs under way, each the leader of its own session: ended on Ctrl-C.
RUNNING: set[subprocess.Popen[str]] = set()
RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()


@dataclass(frozen=True)
class Breakage:
    name: str
    behaviour: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One pytest run on one copy: outcome per node id, pytest processes that imported it."""

    outcomes: dict[str, str]
    processes: int
    wrong_imports: tuple[str, ...]
    output: str
    seconds: float
    timed_out: bool


def load(path: Path = DATA) -> list[Breakage]:
    """The breakages of the data file; ValueError naming the entry when one is malformed."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    breakages = []
    for index, entry in enumerate(document.get("breakage", [])):
        try:
            breakages.append(Breakage(
                entry["name"], entry["behaviour"], entry["file"], entry["old"], entry["new"],
                tuple(entry["tests"]),
            ))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: breakage #{index + 1}: missing or bad key {exc}") from None
    names = [b.name for b in breakages]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: breakage names repeat")
    return breakages


def make_copy(destination: Path) -> None:
    destination.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)


def apply(breakage: Breakage, copy: Path) -> int:
    """Substitute in the copy when `old` occurs exactly once; return how often it occurs."""
    target = copy / breakage.file
    if not target.is_file():
        return 0
    text = target.read_text(encoding="utf-8")
    count = text.count(breakage.old)
    if count == 1:
        target.write_text(text.replace(breakage.old, breakage.new), encoding="utf-8")
    return count


def run_tests(copy: Path, tests: Sequence[str], extra: Sequence[str], timeout: float) -> Run:
    """pytest on `tests` from `copy`, importing the package from `copy` in every process."""
    probe_dir = Path(tempfile.mkdtemp(dir=copy.parent, prefix=f"{copy.name}-probe-"))
    (probe_dir / f"{PROBE_MODULE}.py").write_text(PROBE, encoding="utf-8")
    log = probe_dir / "imports.log"
    log.touch()
    python_path = [str(copy), str(probe_dir), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
        "PYTEST_PLUGINS": PROBE_MODULE,
        "GROKEVAL_BREAKAGE_LOG": str(log),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", *extra, *tests]
    started = time.monotonic()
    # A session of its own, so that a timeout ends its xdist workers and pytester children too.
    with RUNNING_LOCK:
        if STOPPING.is_set():
            raise KeyboardInterrupt
        process = subprocess.Popen(
            command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        RUNNING.add(process)
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop(process)
        output, _ = process.communicate()
    except BaseException:
        stop(process)
        process.wait()
        raise
    finally:
        with RUNNING_LOCK:
            RUNNING.discard(process)
    outcomes = {}
    for line in output.splitlines():
        match = OUTCOME.match(line)
        if match:
            outcomes[match[2]] = match[1]
    imported = [line.split("\t", 1) for line in log.read_text(encoding="utf-8").splitlines()]
    expected = str(copy / "pytest_grokeval" / "__init__.py")
    wrong = tuple(sorted({path for _, path in imported if path != expected}))
    return Run(
        outcomes, len({pid for pid, _ in imported}), wrong, output,
        time.monotonic() - started, timed_out,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """End a pytest run with everything it started (xdist workers, pytester subprocesses)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def verdict(breakage: Breakage, count: int, run: Run | None) -> tuple[str, str]:
    """("caught" | "MISSED" | "stale" | "ERROR", details) for one breakage."""
    if count != 1:
        return "stale", f"{breakage.file}: the text occurs {count} times, not once"
    assert run is not None
    if run.wrong_imports or not run.processes:
        return "ERROR", f"imported {', '.join(run.wrong_imports) or 'no grokeval'}, not the copy"
    if run.timed_out:
        return "caught", f"timed out after {run.seconds:.0f} s"
    missing = [t for t in breakage.tests if t not in run.outcomes]
    if missing:
        return "stale", f"not run: {', '.join(missing)}"
    passed = [t for t in breakage.tests if run.outcomes[t] in ("PASSED", "XPASS", "XFAIL")]
    if passed:
        return "MISSED", f"still passes: {', '.join(passed)}"
    failed = ", ".join(sorted({run.outcomes[t].lower() for t in breakage.tests}))
    return "caught", f"{len(breakage.tests)} {failed}"


def first_error(output: str) -> str:
    """The first line pytest marks as an error: to see at a glance why a test failed."""
    first = next((line[1:].strip() for line in output.splitlines() if line[:2] == "E "), "")
    return first if len(first) <= 90 else first[:87] + "..."


def check(breakage: Breakage, workdir: Path, timeout: float) -> tuple[str, str, Run | None]:
    copy = workdir / breakage.name
    make_copy(copy)
    count = apply(breakage, copy)
    if count != 1:
        return (*verdict(breakage, count, None), None)
    run = run_tests(copy, breakage.tests, ["-x"], timeout)
    return (*verdict(breakage, count, run), run)


def collect(copy: Path, tests: Sequence[str], timeout: float) -> set[str]:
    """The node ids pytest finds in the files of `tests`: a test renamed since is not there."""
    files = sorted({test.split("::")[0] for test in tests})
    run = run_tests(copy, files, ["--collect-only"], timeout)
    return {line for line in run.output.splitlines() if "::" in line and " " not in line}


def check_all(chosen: Sequence[Breakage], workdir: Path, options: argparse.Namespace) -> int:
    """Print the unchanged copy's result, then one line per breakage; the exit status."""
    unchanged = workdir / "unchanged"
    make_copy(unchanged)
    tests = sorted({t for b in chosen for t in b.tests})
    found = collect(unchanged, tests, options.timeout)
    present = [t for t in tests if t in found]
    if not present:  # pytest with no test named would run them all
        for breakage in chosen:
            print(f"{'stale':7} {breakage.name:34} {unproven(breakage, found, set())[1]}")
        return 1
    # xdist only when there are tests to share: starting workers costs seconds.
    spread = ["-n", "2"] if len(present) > 2 else []
    baseline = run_tests(unchanged, present, spread, options.timeout)
    passing = {t for t in present if baseline.outcomes.get(t) == "PASSED"}
    if options.verbose or len(passing) < len(present) or baseline.wrong_imports:
        print(baseline.output)
    print(
        f"unchanged copy: {len(passing)}/{len(present)} tests pass "
        f"(copy imported by {baseline.processes} pytest processes, {baseline.seconds:.0f} s)"
    )
    if baseline.wrong_imports or not baseline.processes:
        print(f"ERROR: imported {', '.join(baseline.wrong_imports) or 'no grokeval'}")
        return 2
    bad = 0
    with ThreadPoolExecutor(max(1, options.jobs)) as pool:
        try:
            futures = {}
            for b in chosen:
                if all(t in passing for t in b.tests):
                    futures[b.name] = pool.submit(check, b, workdir, options.timeout)
            for breakage in chosen:
                status, details, run = unproven(breakage, found, passing)
                if breakage.name in futures:
                    status, details, run = futures[breakage.name].result()
                bad += status != "caught"
                where = f" (copy imported by {run.processes}, {run.seconds:.0f} s)" if run else ""
                print(f"{status:7} {breakage.name:34} {details}{where}", flush=True)
                if run is not None and status == "caught" and first_error(run.output):
                    print(f"{'':8}E {first_error(run.output)}")
                if run is not None and (options.verbose or status != "caught"):
                    print(run.output)
        except KeyboardInterrupt:
            # Pending checks are dropped, running ones killed; then the pool waits for its
            # threads, so that no copy is still being written when tmp goes.
            pool.shutdown(wait=False, cancel_futures=True)
            with RUNNING_LOCK:
                STOPPING.set()
                for process in RUNNING:
                    stop(process)
            raise
    print(f"{len(chosen) - bad}/{len(chosen)} caught")
    return 1 if bad else 0


def unproven(breakage: Breakage, found: set[str], passing: set[str]) -> tuple[str, str, None]:
    """Why a breakage is not checked: a test gone (stale), or failing unchanged (ERROR)."""
    gone = [t for t in breakage.tests if t not in found]
    if gone:
        return "stale", f"no such test: {', '.join(gone)}", None
    failing = [t for t in breakage.tests if t not in passing]
    return "ERROR", f"fails unchanged, so proves nothing: {', '.join(failing)}", None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME", help="breakages to check (all)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="breakages at once (2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per pytest run")
    parser.add_argument("--list", action="store_true", help="list the breakages and stop")
    parser.add_argument("--data", type=Path, default=DATA, help="the list (breakages.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    options = parser.parse_args(argv)
    breakages = load(options.data)
    if options.list:
        for b in breakages:
            print(f"{b.name:36} {b.behaviour}")
        return 0
    unknown = set(options.names) - {b.name for b in breakages}
    if unknown:
        parser.error(f"unknown breakage {', '.join(sorted(unknown))} (see --list)")
    chosen = [b for b in breakages if not options.names or b.name in options.names]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grokeval-breakages-") as tmp:
        try:
            status = check_all(chosen, Path(tmp), options)
        except KeyboardInterrupt:
            print("interrupted")
            return 130
    print(f"took {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
