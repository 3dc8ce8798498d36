"""Issue 11.1: responses are saved as they arrive, so no signal or kill loses a paid one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, poll

from pytest_grokeval.testing import FakeRequest, Reply


def numbered(count: int) -> str:
    """Cases case-0 ... whose prompts are 'prompt 0' ...; each expects its own echo."""
    return "cases:\n" + "".join(
        f"  - id: case-{i}\n    prompt: prompt {i}\n    expect: {{contains: prompt {i}}}\n"
        for i in range(count)
    )


def journal_lines(directory: Path) -> int:
    """Complete lines in every journal of a recordings folder."""
    return sum(p.read_bytes().count(b"\n") for p in directory.glob(".*.journal"))


def replay_without_key(project: Project, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.delenv("XAI_API_KEY")
    return project.run("--grok-record=none", "-v")


def passed(result: pytest.RunResult) -> set[str]:
    return {
        line.split("::")[1].split()[0] for line in result.outlines if line.endswith("PASSED")
        or " PASSED " in line
    }


def test_sigterm_after_11_of_12_answers_keeps_all_11_and_exits_as_on_an_interrupt(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_many.yaml", numbered(12))
    project.server.responder = lambda r: Reply(hang=True) if r.prompt == "prompt 7" else None
    folder = project.recording("test_many.yaml").parent

    with project.spawn() as process:
        poll(lambda: folder.exists() and journal_lines(folder) == 11, "11 journaled responses")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)

    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    # The hanging request was out when the run stopped: it may be billed all the same.
    assert "attempts: 12, 1 of unknown cost (timed out, dropped after sending, interrupted" in (
        output
    )
    recorded = json.loads(project.recording("test_many.yaml").read_text())["entries"]
    assert set(recorded) == {f"case-{i}" for i in range(12)} - {"case-7"}
    assert journal_lines(folder) == 0  # merged into the file on the way out
    replay = replay_without_key(project, monkeypatch)
    replay.assert_outcomes(passed=11, failed=1)
    assert project.server.request_count == 12


def test_sigkill_in_a_100_case_prefetch_loses_no_response_completed_a_second_before(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.server.latency = 0.3
    project.suite("test_many.yaml", numbered(100))

    def completed_before(moment: float) -> set[str]:
        return {
            e.prompt.replace("prompt ", "case-")
            for e in project.server.log
            if e.status == 200 and e.finished <= moment
        }

    with project.spawn("--grok-max-concurrent=8") as process:
        poll(lambda: len(completed_before(time.monotonic() - 1.0)) >= 10, "10 old answers")
        killed_at = time.monotonic()
        process.kill()
        process.communicate(timeout=60)
    safe = completed_before(killed_at - 1.0)

    assert process.returncode == -signal.SIGKILL
    assert len(project.server.log) < 100  # killed mid-prefetch
    replay = replay_without_key(project, monkeypatch)
    assert safe <= passed(replay)
    # The replay merged the killed run's journal into the one reviewable file.
    folder = project.recording("test_many.yaml").parent
    assert journal_lines(folder) == 0
    recorded = json.loads(project.recording("test_many.yaml").read_text())["entries"]
    assert safe <= set(recorded)


def test_a_killed_saves_temporary_files_are_removed_and_git_add_stages_only_recordings(
    project: Project,
) -> None:
    project.suite("test_one.yaml", numbered(2))
    project.run().assert_outcomes(passed=2)
    folder = project.recording("test_one.yaml").parent
    (folder / ".test_one.json.k1ll3d.tmp").write_text('{"version": 1, "ent')

    project.run().assert_outcomes(passed=2)  # a replay, with nothing to save

    assert not (folder / ".test_one.json.k1ll3d.tmp").exists()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (folder / ".test_one.json.k1ll3d.tmp").write_text("left by a later kill")
    (folder / ".test_one.json.4242.journal").write_text("{}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=project.path, check=True)
    subprocess.run([*git, "add", "__recordings__"], cwd=project.path, check=True)
    staged = subprocess.run(
        [*git, "diff", "--cached", "--name-only"],
        cwd=project.path, check=True, capture_output=True, text=True,
    ).stdout.split()
    assert staged == ["__recordings__/.gitignore", "__recordings__/test_one.json"]


def test_a_journal_left_by_a_killed_run_is_replayed_and_merged(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording, lines = recorded_lines(project, 2)
    line = lines[1]
    entry = {key: value for key, value in lines[0].items() if key != "item"}
    recording.write_text(json.dumps({"version": 1, "entries": {"case-0": [entry]}}))
    journal = recording.parent / ".test_one.json.12345.journal"
    # The killed run's last line was cut short: it is skipped, the rest is kept.
    journal.write_text(json.dumps(line) + "\n" + json.dumps(line)[:40])

    replay = replay_without_key(project, monkeypatch)

    replay.assert_outcomes(passed=2)
    assert not journal.exists()
    assert set(json.loads(recording.read_text())["entries"]) == {"case-0", "case-1"}


def test_each_response_is_in_the_journal_before_the_next_request_is_sent(
    project: Project,
) -> None:
    project.suite("test_many.yaml", numbered(5))
    folder = project.recording("test_many.yaml").parent
    seen: list[int] = []

    def count_journal(request: FakeRequest) -> None:
        seen.append(journal_lines(folder) if folder.exists() else 0)

    project.server.responder = count_journal

    project.run("--grok-max-concurrent=1").assert_outcomes(passed=5)

    assert seen == [0, 1, 2, 3, 4]


SHARED_DIR_CONFTEST = """
from pathlib import Path

def pytest_configure_node(node):
    # Tell the test where the run's shared folder is, so it can find the fetching worker.
    Path("shared_dir.txt").write_text(node.workerinput["grokeval_shared_dir"])
"""


def test_a_fetching_xdist_worker_killed_midway_loses_no_response_it_had_received(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pytester.makeconftest(SHARED_DIR_CONFTEST)
    project.suite("test_many.yaml", numbered(8))

    def kill_the_fetcher_at_the_sixth(request: FakeRequest) -> Reply | None:
        if request.index < 5:
            return None
        shared = Path((project.path / "shared_dir.txt").read_text())
        os.kill(int((shared / "leader").read_text()), signal.SIGKILL)
        return Reply(hang=True)

    project.server.responder = kill_the_fetcher_at_the_sixth

    # One request at a time: the sixth is sent only once the fifth response is journaled.
    project.run("-n", "2", "--grok-max-concurrent=1", "-p", "no:cacheprovider")

    project.server.responder = None
    replay = replay_without_key(project, monkeypatch)
    assert passed(replay) == {f"case-{i}" for i in range(5)}


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its orphaned parent's reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


# SIGKILL: the controller cannot tell the worker, which must notice that it is orphaned.
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}


@pytest.mark.parametrize("group", [False, True], ids=["to the controller", "to its group"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_to_the_xdist_controller_stops_the_fetching_worker_and_keeps_its_answers(
    project: Project, name: str, group: bool
) -> None:
    signum = SIGNALS[name]
    if group and signum == signal.SIGKILL:
        pytest.skip("nothing is left to save anything")
    project.pytester.makeconftest(SHARED_DIR_CONFTEST)
    project.server.latency = 0.3
    # 4.5 s of answers in all: less than xdist waits (5 s) before it interrupts a busy worker.
    project.suite("test_many.yaml", numbered(30))
    shared_dir = project.path / "shared_dir.txt"

    def leader() -> Path:
        return Path(shared_dir.read_text()) / "leader"

    with project.spawn("-n", "2", "--grok-max-concurrent=2", group=group) as process:
        poll(lambda: shared_dir.exists() and leader().exists(), "the fetching worker")
        fetcher = int(leader().read_text())
        poll(lambda: project.server.request_count >= 6, "6 requests")
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
        poll(lambda: not alive(fetcher), "the fetching worker to exit")

    assert project.server.request_count < 30  # it stopped sending
    if signum != signal.SIGKILL:
        assert process.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "cannot send" not in output
    received = {
        e.prompt.replace("prompt ", "case-") for e in project.server.log if e.status == 200
    }
    recorded = json.loads(project.recording("test_many.yaml").read_text())["entries"]
    assert received == set(recorded)


def test_a_second_run_replays_a_live_runs_journal_but_leaves_it_for_the_answers_still_coming(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_many.yaml", numbered(6))
    folder = project.recording("test_many.yaml").parent
    second_run_done = threading.Event()

    def hold_the_fourth_until_the_second_run_is_done(request: FakeRequest) -> Reply | None:
        if request.index == 3:
            # Blocks the fake server's loop; run 1 sends one request at a time, run 2 none.
            second_run_done.wait(60)
        return Reply(hang=True) if request.index == 5 else None

    project.server.responder = hold_the_fourth_until_the_second_run_is_done

    with project.spawn("--grok-max-concurrent=1") as process:
        poll(lambda: folder.exists() and journal_lines(folder) == 3, "3 journaled responses")
        second = replay_without_key(project, monkeypatch)
        second_run_done.set()
        # The sixth request goes out once the fifth response is journaled; it never returns.
        poll(lambda: project.server.request_count == 6, "the sixth request")
        process.kill()
        process.communicate(timeout=60)

    assert passed(second) == {"case-0", "case-1", "case-2"}
    replay = project.run("--grok-record=none", "-v")
    assert passed(replay) == {f"case-{i}" for i in range(5)}
    assert journal_lines(folder) == 0  # the writer is dead now: merged and deleted


def journal_of_three(project: Project, middle: bytes, pid: int = 12345) -> Path:
    """Recordings of case-0..2 moved into a killed run's journal, with `middle` as line 2."""
    recording, lines = recorded_lines(project, 3)
    recording.write_text(json.dumps({"version": 1, "entries": {}}))
    first, last = (json.dumps(lines[i]).encode() for i in (0, 2))
    journal = recording.parent / f".test_one.json.{pid}.journal"
    journal.write_bytes(first + b"\n" + middle + b"\n" + last + b"\n")
    return journal


def recorded_lines(project: Project, count: int) -> tuple[Path, list[dict[str, Any]]]:
    """Record case-0..count-1 of test_one.yaml: its recordings file, and each entry as the
    journal line that would carry it (the entry with its item's name)."""
    project.suite("test_one.yaml", numbered(count))
    project.run().assert_outcomes(passed=count)
    recording = project.recording("test_one.yaml")
    entries = json.loads(recording.read_text())["entries"]
    return recording, [{"item": f"case-{i}", **entries[f"case-{i}"][0]} for i in range(count)]


def entry_line(change: Callable[[dict[str, Any]], object]) -> bytes:
    """A journal line of case-1 as the fake server answers it, changed by `change`."""
    line: dict[str, Any] = {
        "item": "case-1", "sample": 0, "fingerprint": "f" * 64,
        "request": {"model": "grok-4", "messages": [], "params": {}},
        "response": {"text": "You said: prompt 1", "model": "grok-4", "cost_usd": 0.001},
    }
    change(line)
    return json.dumps(line).encode()


DAMAGED = {
    "not JSON": (b"garbage{{", "Expecting value (column 1)"),
    "an array": (b"[1,2]", "at the top level, [1, 2] is not of type 'object'"),
    "null": (b"null", "at the top level, null is not of type 'object'"),
    "text 7": (
        entry_line(lambda e: e["response"].update(text=7)),
        "at $.response.text, 7 is not of type 'string'",
    ),
    "sample true": (
        entry_line(lambda e: e.update(sample=True)), "at $.sample, true is not of type 'integer'"
    ),
    "NaN cost": (
        entry_line(lambda e: e["response"].update(cost_usd=float("nan"))),
        "NaN is not a JSON number",
    ),
    "Latin-1": ("prompt \xe9t\xe9".encode("latin-1"), "not UTF-8 text"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_journal_line_is_named_in_a_warning_and_the_journal_is_kept(
    project: Project, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    middle, what = DAMAGED[name]
    journal = journal_of_three(project, middle)
    before = journal.read_bytes()

    replay = replay_without_key(project, monkeypatch)

    assert passed(replay) == {"case-0", "case-2"}  # the valid lines are used
    assert (
        f"WARNING __recordings__/.test_one.json.12345.journal:2: damaged journal line skipped: "
        f"{what}; its other lines were used, and the journal is kept: "
    ) in replay.stdout.str()
    assert journal.read_bytes() == before
    recorded = json.loads(project.recording("test_one.yaml").read_text())["entries"]
    assert set(recorded) == {"case-0", "case-2"}


def test_a_journal_written_as_one_pretty_printed_array_is_named_once_and_kept(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording, lines = recorded_lines(project, 2)
    recording.write_text(json.dumps({"version": 1, "entries": {}}))
    journal = recording.parent / ".test_one.json.12345.journal"
    journal.write_text(json.dumps(lines, indent=2) + "\n")

    replay = replay_without_key(project, monkeypatch)

    assert passed(replay) == set()
    replay.stdout.fnmatch_lines([
        "WARNING __recordings__/.test_one.json.12345.journal:1: damaged journal line skipped: "
        "Expecting value (column 2) (and * more damaged lines); *"
    ])
    assert journal.exists()


def test_a_damaged_journal_of_a_dead_run_whose_pid_this_run_has_is_kept_too(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytester runs in this process: the journal has the name this run's own would have.
    journal = journal_of_three(project, b"garbage{{", pid=os.getpid())

    replay = replay_without_key(project, monkeypatch)

    assert passed(replay) == {"case-0", "case-2"}
    assert "damaged journal line skipped" in replay.stdout.str()
    assert journal.exists()
