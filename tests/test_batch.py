"""Issue 16: --grok-batch sends the run through xAI's Batch API (the fake's batch endpoints)."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, INI, Project, poll

from pytest_grokeval.checks.judge import JUDGE_SYSTEM
from pytest_grokeval.engine.batch import PAGE_SIZE
from pytest_grokeval.options import BATCH_FLAGS
from pytest_grokeval.recordings.journal import journals_of
from pytest_grokeval.testing import FakeGrok, FakeRequest, Reply
from pytest_grokeval.testing.batch import FakeBatches

CASES = 500


def numbered(count: int, *, head: str = "") -> str:
    cases = "".join(
        f"  - id: case-{i}\n    prompt: prompt {i}\n    expect: {{contains: prompt {i}}}\n"
        for i in range(count)
    )
    return f"{head}cases:\n{cases}"


class BatchProject(Project):
    def __init__(self, pytester: pytest.Pytester, server: FakeGrok, batches: FakeBatches):
        super().__init__(pytester, server)
        self.batches = batches

    def entries(self, suite: str) -> dict[str, list[dict[str, Any]]]:
        document = json.loads(self.recording(suite).read_text())
        entries: dict[str, list[dict[str, Any]]] = document["entries"]
        return entries

    @property
    def batch_cache(self) -> Path:
        """Where pytest's cache keeps the run's batch records."""
        return self.path / ".pytest_cache" / "d" / "grokeval" / "batches.json"

    def leave_two_pending(self) -> pytest.RunResult:
        """A batch run of 3 cases that the batch answers only one of within its 1 s wait."""
        self.batches.hold_after = 1
        self.suite("test_many.yaml", numbered(3))
        # In a subprocess with a timeout: a wait that never ends must fail the test, not hang it.
        result = self.run_subprocess("--grok-batch", "--grok-batch-wait", "1", timeout=60)
        result.assert_outcomes(passed=1, failed=2)
        return result


@pytest.fixture
def batches() -> FakeBatches:
    return FakeBatches(delay=0.5)


@pytest.fixture
def project(
    pytester: pytest.Pytester, batches: FakeBatches, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BatchProject]:
    monkeypatch.setenv("XAI_API_KEY", API_KEY)
    monkeypatch.delenv("XAI_BASE_URL", raising=False)
    pytester.makeini(INI)
    with FakeGrok(routes=batches.routes()) as server:
        yield BatchProject(pytester, server, batches)


def journaled_count(recordings: Path) -> int:
    """Entries appended to the journals of a recordings file so far (complete lines only)."""
    return sum(
        sum(1 for line in path.read_text(encoding="utf-8").splitlines(True)
            if line.startswith("{") and line.endswith("\n"))
        for path in journals_of(recordings)
    )


def test_500_cases_go_into_one_batch_with_no_real_time_request_and_replay_without_a_key(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_many.yaml", numbered(CASES))

    result = project.run("--grok-batch")

    result.assert_outcomes(passed=CASES)
    assert project.batches.created == 1
    assert project.batches.snapshot()["requests"] == CASES
    assert project.server.request_count == 0
    entries = project.entries("test_many.yaml")
    assert len(entries) == CASES
    assert {sample["response"]["via"] for samples in entries.values() for sample in samples} == {
        "batch"
    }
    result.stdout.fnmatch_lines(["grokeval: created batch batch_000000 (main); resume with*"])

    monkeypatch.delenv("XAI_API_KEY")
    replay = project.run("--grok-record=none")
    replay.assert_outcomes(passed=CASES)
    assert project.server.request_count == 0
    assert project.batches.created == 1


def test_sigterm_leaves_the_batch_running_and_a_rerun_reads_only_the_rest(
    project: BatchProject,
) -> None:
    half = CASES // 2
    project.batches.hold_after = half
    project.suite("test_many.yaml", numbered(CASES))
    with project.spawn("--grok-batch") as process:
        project.batches.wait_for_served(half, timeout=60)
        # Served is not yet recorded: the run journals a page's results after reading it.
        poll(
            lambda: journaled_count(project.recording("test_many.yaml")) >= half,
            "the first half to be journaled",
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "keeps running at xAI" in output and "--grok-batch-cancel" in output, output
    first = set(project.batches.served_ids)
    assert len(first) == half

    project.batches.release()
    result = project.run("--grok-batch")

    result.assert_outcomes(passed=CASES)
    result.stdout.fnmatch_lines(["grokeval: resuming batch batch_000000 (main)"])
    assert project.batches.created == 1
    assert project.batches.add_calls == 1
    served = project.batches.served_ids
    # A signal between journaling a page and moving the page token on makes the rerun read
    # that one page again (reading is free, and its answers are recorded once): never more.
    assert len(first & set(served[len(first) :])) <= PAGE_SIZE
    entries = project.entries("test_many.yaml")
    assert len(entries) == CASES
    assert all(samples[0]["response"]["via"] == "batch" for samples in entries.values())
    assert project.server.request_count == 0


def test_on_a_terminal_the_line_shows_pending_succeeded_failed_and_elapsed(
    project: BatchProject,
) -> None:
    project.batches.delay = 3.0
    project.suite("test_many.yaml", numbered(10))
    returncode, output = project.run_on_terminal("--grok-batch")
    assert returncode == 0, output
    line = r"grokeval: batch batch_000000: \d+ pending, \d+ succeeded, 0 failed, \d+\.\ds"
    assert re.search(line, output), output


@pytest.mark.parametrize(
    ("head", "says"),
    [
        ("model: grok-4.5\n", "*--grok-batch: xAI's Batch API does not take 'grok-4.5'*"),
        ("api: responses\n", "*--grok-batch sends Chat Completions only*api: responses*"),
    ],
    ids=["unbatched-model", "responses-api"],
)
def test_what_the_batch_api_does_not_take_is_refused_before_any_batch_exists(
    project: BatchProject, head: str, says: str
) -> None:
    project.suite("test_models.yaml", numbered(2, head=head))

    result = project.run("--grok-batch")

    project.assert_sent_nothing(result, pytest.ExitCode.INTERRUPTED, says)
    assert project.batches.created == 0


def test_a_model_the_server_refuses_for_batch_stops_the_run_naming_it(
    project: BatchProject,
) -> None:
    project.batches.rejected.add("grok-4.20-0309-reasoning")
    project.suite("test_models.yaml", numbered(2, head="model: grok-4.20-0309-reasoning\n"))

    result = project.run("--grok-batch")

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.INTERRUPTED,
        "*Model grok-4.20-0309-reasoning is not supported for batch processing*",
    )
    assert project.batches.cancels == 1  # the empty batch is not left behind


def test_batch_wait_fails_unread_items_as_pending_and_cancel_stops_the_batch(
    project: BatchProject,
) -> None:
    result = project.leave_two_pending()

    result.stdout.fnmatch_lines(["request failed: still pending in batch batch_000000 after*"])

    cancel = project.run("--grok-batch-cancel")
    cancel.stdout.fnmatch_lines(["*--grok-batch-cancel: cancelled batch batch_000000*"])
    assert project.batches.cancels == 1
    again = project.run("--grok-batch-cancel")
    again.stdout.fnmatch_lines(["*pytest's cache names no batch*"])
    assert project.batches.cancels == 1


JUDGED = """
cases:
  - id: polite
    prompt: Say something polite.
    repeat: 3
    min_pass_rate: 0.3
    expect:
      judge: The response is polite.
"""


def grader(request: FakeRequest) -> Reply:
    if request.body["messages"][0]["content"] == JUDGE_SYSTEM:
        return Reply(content='{"pass": true, "reason": "It thanks the user."}')
    return Reply(content="Thank you!")


def test_graders_go_into_a_follow_up_batch_and_repeats_send_every_sample(
    project: BatchProject,
) -> None:
    project.server.responder = grader
    project.suite("test_judged.yaml", JUDGED)

    result = project.run("--grok-batch")

    result.assert_outcomes(passed=1)
    # Real time would stop after the first passing sample; a batch sends all three.
    assert project.batches.created == 2
    assert project.batches.snapshot()["requests"] == 3 + 1  # one distinct grader request
    assert project.server.request_count == 0


def test_under_xdist_one_worker_owns_the_one_batch(project: BatchProject) -> None:
    project.suite("test_many.yaml", numbered(20))

    result = project.run("--grok-batch", "-n", "2")

    result.assert_outcomes(passed=20)
    assert project.batches.created == 1
    assert project.batches.snapshot()["requests"] == 20
    assert project.server.request_count == 0
    assert len(project.entries("test_many.yaml")) == 20


def test_the_fake_refuses_add_calls_over_its_limit_with_a_429(project: BatchProject) -> None:
    project.batches.add_calls_per_window = 1
    base = project.url.removesuffix("/v1")
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}

    def post(path: str, body: object) -> int:
        request = urllib.request.Request(
            base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert post("/v1/batches", {"name": "x"}) == 200
    add = {"batch_requests": []}
    assert [post("/v1/batches/batch_000000/requests", add) for _ in range(2)] == [200, 429]
    assert project.batches.rate_limited == 1
    assert project.server.request_count == 0


def test_a_result_without_ticks_is_costed_at_half_the_list_price_saying_so(
    project: BatchProject,
) -> None:
    project.suite("test_many.yaml", numbered(1))
    # A usage override sets keys: ticks of JSON null are no ticks.
    no_ticks: dict[str, Any] = {
        "prompt_tokens": 1_000_000, "completion_tokens": 0, "cost_in_usd_ticks": None
    }
    project.server.responder = lambda request: Reply(usage=no_ticks)

    result = project.run("--grok-batch")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["grokeval: 1 batch results carried no cost; each is costed at "
                                 "half the list price*"])
    (sample,) = project.entries("test_many.yaml")["case-0"]
    assert sample["response"]["cost_usd"] == pytest.approx(1.25 / 2)


def test_every_batch_option_is_in_the_readme_options_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for flag, *_ in BATCH_FLAGS:
        assert f"| `{flag}" in readme, flag
    assert "## Batch mode" in readme


def test_batch_mode_needs_a_recording_mode_that_sends(project: BatchProject) -> None:
    project.suite("test_many.yaml", numbered(1))
    result = project.run("--grok-batch", "--grok-record=none")
    project.assert_sent_nothing(
        result, pytest.ExitCode.USAGE_ERROR, "*--grok-batch sends requests, but --grok-record=none*"
    )


def write_batch_cache(project: BatchProject, value: object) -> Path:
    path = project.batch_cache
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


def test_cancel_of_a_batch_the_server_no_longer_has_forgets_it_cleanly(
    project: BatchProject,
) -> None:
    project.batches.hold_after = 0
    project.suite("test_many.yaml", numbered(2))
    first = project.run_subprocess("--grok-batch", "--grok-batch-wait", "0.5", timeout=60)
    first.assert_outcomes(failed=2)
    path = project.batch_cache
    stored = json.loads(path.read_text())
    (key,) = stored
    # One batch the server knows, one it lost (a restarted server, an edited cache).
    stored["0" * 16] = {"main": {"id": "batch_999999", "added": [], "token": None}}
    path.write_text(json.dumps(stored))

    cancel = project.run("--grok-batch-cancel")

    assert cancel.ret == pytest.ExitCode.INTERRUPTED, cancel.stdout.str()
    assert "INTERNALERROR" not in cancel.stdout.str() + cancel.stderr.str()
    cancel.stdout.fnmatch_lines(
        ["*cancelled batch batch_000000; batch batch_999999 is gone; forgetting it*"]
    )
    assert project.batches.cancels == 1
    assert json.loads(path.read_text()) == {}


TWO_GRADERS = """
cases:
  - id: graded
    prompt: Say something polite.
    expect:
      judge: The response is polite.
      not_judge: The response is rude.
"""


def two_graders(request: FakeRequest) -> Reply:
    if request.body["messages"][0]["content"] == JUDGE_SYSTEM:
        rude = "rude" in json.dumps(request.body["messages"][1:])
        return Reply(content=json.dumps({"pass": not rude, "reason": "It thanks the user."}))
    return Reply(content="Thank you!")


@pytest.mark.parametrize("record", ["new", "all"])  # all: the sample is resumed first
def test_a_stopped_judge_batch_is_resumed_not_sent_again(
    project: BatchProject, record: str
) -> None:
    project.server.responder = two_graders
    # Per batch: the one sample request is read, one of its two grader requests is held.
    project.batches.hold_after = 1
    project.suite("test_judged.yaml", TWO_GRADERS)
    with project.spawn("--grok-batch", f"--grok-record={record}") as process:
        project.batches.wait_for_served(2, timeout=60)
        poll(
            lambda: len(project.batches.pages) >= 1 and project.batches.created == 2,
            "the judge batch",
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    judge = re.search(r"created batch (\S+) \(judge\)", output)
    assert judge, output

    project.batches.release()
    result = project.run("--grok-batch", f"--grok-record={record}")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"grokeval: resuming batch {judge[1]} (judge)"])
    assert project.batches.created == 2
    assert project.batches.snapshot()["requests"] == 1 + 2
    assert project.server.request_count == 0


@pytest.mark.parametrize("loss", ["server", "cache"])
def test_a_batch_the_server_lost_is_forgotten_and_what_is_missing_sent_anew(
    project: BatchProject, loss: str
) -> None:
    project.leave_two_pending()
    if loss == "server":  # restarted, or expired at xAI
        project.batches.lose()
        lost = "batch_000000"
    else:  # the cache names a batch the server never had
        path = project.batch_cache
        stored = json.loads(path.read_text())
        for entry in stored.values():
            entry["main"]["id"] = lost = "batch_999999"
        path.write_text(json.dumps(stored))
    project.batches.release()

    result = project.run_subprocess("--grok-batch", timeout=60)

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"grokeval: batch {lost} (main) is gone at xAI; forgetting it and sending what is "
         "missing in a new batch"]
    )
    assert project.batches.created == 2
    # The new batch holds only the two results the first run did not read.
    assert project.batches.snapshot()["requests"] == (2 if loss == "server" else 3 + 2)
    assert project.server.request_count == 0


# Each makes the file's text from the good value; "cut short" leaves it no longer JSON.
CORRUPTIONS = {
    "cut short": lambda stored, key: json.dumps(stored)[:20],
    "value": lambda stored, key: [1, 2],
    "entry": lambda stored, key: {**stored, key: [1, 2]},
    "record": lambda stored, key: {**stored, key: {"main": "batch_000000"}},
    "id": lambda stored, key: {**stored, key: {"main": {**stored[key]["main"],
                                                        "id": "../../v1/models"}}},
    "added": lambda stored, key: {**stored, key: {"main": {**stored[key]["main"],
                                                           "added": [1, 2]}}},
}


def test_the_batch_ids_are_replaced_in_one_step_never_rewritten_in_place(
    project: BatchProject,
) -> None:
    # pytest's Cache.set truncates, then writes: a SIGTERM in between left no batch id, and
    # the next run paid again for a new batch.
    project.leave_two_pending()
    path = project.batch_cache
    first = path.read_bytes()
    reader = project.path / "opened_before.json"
    os.link(path, reader)
    project.batches.release()

    project.run_subprocess("--grok-batch", timeout=60).assert_outcomes(passed=3)

    assert os.stat(path).st_ino != os.stat(reader).st_ino
    assert reader.read_bytes() == first


@pytest.mark.parametrize("flag", ["--grok-batch", "--grok-batch-cancel"])
def test_a_cache_that_cannot_keep_batch_ids_stops_the_run_before_a_batch_is_made(
    project: BatchProject, flag: str
) -> None:
    project.suite("test_many.yaml", numbered(3))
    folder = project.path / ".pytest_cache" / "d"
    folder.mkdir(parents=True)
    (folder / "grokeval").write_text("a file where the folder goes")

    result = project.run_subprocess(flag, timeout=60)

    assert result.ret == pytest.ExitCode.INTERRUPTED, result.outlines
    result.stdout.fnmatch_lines(
        ["*grokeval: cannot keep the batch ids in pytest's cache (.pytest_cache/d/grokeval/"
         "batches.json): *; make it writable*"]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert project.batches.created == 0
    assert project.server.request_count == 0


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_malformed_cache_record_is_ignored_saying_so(
    project: BatchProject, corruption: str
) -> None:
    project.leave_two_pending()
    path = project.batch_cache
    stored = json.loads(path.read_text())
    (key,) = stored
    bad = CORRUPTIONS[corruption](stored, key)
    text = bad if corruption == "cut short" else json.dumps(bad)
    path.write_text(text)
    project.batches.release()

    result = project.run_subprocess("--grok-batch", timeout=60)

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "grokeval: pytest's cache (d/grokeval/batches.json) holds a malformed "
        "batch record for this run (*); ignoring it"
    ])
    assert project.batches.created == 2  # a new batch, nothing sent to a path out of /batches
    assert project.server.request_count == 0

    path.write_text(text)
    cancel = project.run_subprocess("--grok-batch-cancel", timeout=60)
    assert cancel.ret == pytest.ExitCode.INTERRUPTED, cancel.stdout.str()
    assert "INTERNALERROR" not in cancel.stdout.str() + cancel.stderr.str()
    assert project.batches.cancels == 0


@pytest.mark.parametrize("flag", ["--grok-batch", "--grok-batch-cancel"])
def test_batch_mode_without_pytests_cache_is_a_usage_error(
    project: BatchProject, flag: str
) -> None:
    project.suite("test_many.yaml", numbered(1))
    result = project.run(flag, "-p", "no:cacheprovider")
    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        f"*{flag} keeps its batch ids in pytest's cache, but -p no:cacheprovider disables it*",
    )
    assert project.batches.created == 0


def test_a_finished_batch_lacking_requests_the_cache_says_it_has_fails_them_not_hangs(
    project: BatchProject,
) -> None:
    project.leave_two_pending()
    # Another suite's batch, finished, holding none of these requests.
    created = urllib.request.Request(
        project.url + "/batches",
        data=json.dumps({"name": "other"}).encode(),
        headers={"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(created, timeout=30) as response:
        other = json.loads(response.read())["batch_id"]
    path = project.batch_cache
    stored = json.loads(path.read_text())
    for entry in stored.values():
        entry["main"]["id"] = other
    path.write_text(json.dumps(stored))
    project.batches.release()

    # In a subprocess with a timeout: polling forever must fail this test, not hang it.
    result = project.run_subprocess("--grok-batch", timeout=60)

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [f"*request failed: batch {other} finished without a result for this request*"]
    )
    again = project.run_subprocess("--grok-batch", timeout=60)
    again.assert_outcomes(passed=3)
    assert project.batches.created == 3
    assert project.server.request_count == 0


@pytest.mark.parametrize("record", ["all", "rewrite"])
def test_the_resume_hint_repeats_the_record_mode(project: BatchProject, record: str) -> None:
    project.batches.hold_after = 0
    project.suite("test_many.yaml", numbered(1))
    result = project.run_subprocess(
        "--grok-batch", f"--grok-record={record}", "--grok-batch-wait", "0.5", timeout=60
    )
    result.assert_outcomes(failed=1)
    hint = f"resume with `pytest --grok-batch --grok-record={record}` (same selection)*"
    result.stdout.fnmatch_lines([f"grokeval: created batch batch_000000 (main); {hint}"])
    result.stdout.fnmatch_lines([f"*still pending in batch batch_000000 after*; {hint}"])


def test_a_rerun_that_needs_no_batch_keeps_the_running_one_in_the_cache_saying_so(
    project: BatchProject,
) -> None:
    project.leave_two_pending()
    realtime = project.run()  # records the two the batch has not answered yet
    realtime.assert_outcomes(passed=3)

    result = project.run("--grok-batch")

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["grokeval: this run needed no result of batch batch_000000 (main); it stays in "
         "pytest's cache: cancel it with `pytest --grok-batch-cancel` if it still runs"]
    )
    cancel = project.run("--grok-batch-cancel")
    cancel.stdout.fnmatch_lines(["*--grok-batch-cancel: cancelled batch batch_000000*"])
    assert project.batches.cancels == 1
