"""Issue 11.2: a fault in one suite's recordings, one reply or one save stays there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Project

from pytest_grokeval.jsonfile import dumps
from pytest_grokeval.testing import Reply

SUITE_A = """
cases:
  - id: first
    prompt: alpha one
    expect: {contains: alpha}
  - id: second
    prompt: alpha two
    expect: {contains: alpha}
"""
SUITE_B = """
cases:
  - id: other
    prompt: beta
    expect: {contains: beta}
"""


def record_both(project: Project) -> Path:
    project.suite("test_a.yaml", SUITE_A)
    project.suite("test_b.yaml", SUITE_B)
    project.run().assert_outcomes(passed=3)
    return project.recording("test_a.yaml")


def replay(project: Project, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.delenv("XAI_API_KEY")
    return project.run("--grok-record=none", "-rf")


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_wrong_value_types_in_recordings_fail_that_suite_naming_file_and_line(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record_both(project)
    text = recording.read_text()
    text = text.replace('"usage": {', '"usage": "lots", "was_usage": {', 1)
    text = text.replace('"latency_ms": ', '"latency_ms": "fast", "was_latency": ', 2)
    text = text.replace('"latency_ms": "fast", "was_latency": ', '"latency_ms": ', 1)
    recording.write_text(text)

    result = replay(project, monkeypatch)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=2)
    usage, latency = line_of(text, '"usage": "lots"'), line_of(text, '"latency_ms": "fast"')
    assert (
        f"unreadable recordings: __recordings__/test_a.json:{usage}: malformed recordings file:"
        f" at $.entries.first[0].response.usage, 'lots' is not of type 'object', 'null'; "
        f"line {latency}: at $.entries.second[0].response.latency_ms, 'fast' is not of type "
        "'number', 'null'; fix it by hand"
    ) in result.stdout.str()
    assert recording.read_text() == text  # left as it was, for the user to fix


def test_wrong_values_in_recordings_are_named_as_json_spells_them(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record_both(project)
    text = recording.read_text().replace('"sample": 0', '"sample": true', 1)
    text = text.replace('"fingerprint": ', '"fingerprint": null, "was": ', 1)
    recording.write_text(text)

    result = replay(project, monkeypatch)

    sample = line_of(text, '"sample": true')
    assert (
        "at $.entries.first[0].fingerprint, null is not of type 'string'; "
        f"line {sample}: at $.entries.first[0].sample, true is not of type 'integer'"
    ) in result.stdout.str()


def deeply_nested(text: str) -> str:
    return text.replace('"params": {}', '"params": ' + "[" * 100_000 + "]" * 100_000, 1)


RECORDING_FAULTS = {
    "not UTF-8": (lambda t: t.replace("alpha one", "alpha \udcff one"), "test_a.json:{line}: "
                  "malformed recordings file: not UTF-8 text"),
    "duplicate keys": (lambda t: t.replace('"sample": 0', '"sample": 0, "sample": 1', 1),
                       "test_a.json:{line}: malformed recordings file: duplicate key 'sample'"),
    "deep nesting": (deeply_nested,
                     "test_a.json:{line}: malformed recordings file: nested too deeply to read"),
    "5,000-digit number": (lambda t: t.replace('"sample": 0', '"sample": ' + "9" * 5000, 1),
                           "test_a.json:{line}: malformed recordings file: number 99999999...9999"
                           " (5000 characters) is too large"),
    "number past float's range": (
        lambda t: t.replace('"latency_ms": ', '"latency_ms": 1e400, "was": ', 1),
        "test_a.json:{line}: malformed recordings file: number 1e400 is too large"),
    "NaN": (lambda t: t.replace('"cost_usd": ', '"cost_usd": NaN, "was": ', 1),
            "test_a.json:{line}: malformed recordings file: NaN is not a JSON number"),
    "-Infinity": (lambda t: t.replace('"latency_ms": ', '"latency_ms": -Infinity, "was": ', 1),
                  "test_a.json:{line}: malformed recordings file: -Infinity is not a JSON number"),
    "wrong version": (lambda t: t.replace('"version": 1', '"version": 2'),
                      "test_a.json: malformed recordings file: unsupported version 2*"),
}


@pytest.mark.parametrize("fault", list(RECORDING_FAULTS))
def test_a_broken_recordings_file_fails_only_its_own_suite(
    project: Project, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    recording = record_both(project)
    edit, message = RECORDING_FAULTS[fault]
    text = edit(recording.read_text())
    recording.write_bytes(text.encode("utf-8", "surrogateescape"))
    markers = ("\udcff", '"sample": 1', "9" * 5000, "[[[", "1e400", "NaN", "-Infinity")
    marker = next((n for n in markers if n in text), None)
    line = line_of(text, marker) if marker else 0

    result = replay(project, monkeypatch)

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([f"*unreadable recordings: *{message.format(line=line)}*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_recordings_with_unknown_figures_and_later_fields_replay(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record_both(project)
    document = json.loads(recording.read_text())
    response = document["entries"]["first"][0]["response"]
    response.update(
        cost_usd=None, latency_ms=None, refusal=None, tool_calls=None, endpoint="chat",
        via="realtime", reasoning_effort=None, request_id="req-1", someday="a later field",
    )
    response["usage"]["prompt_tokens"] = None
    recording.write_text(json.dumps(document))

    replay(project, monkeypatch).assert_outcomes(passed=3)


SURROGATE = "smile \ud83d end"


def test_a_reply_with_a_lone_surrogate_is_checked_and_recorded_with_every_other_suite(
    project: Project,
) -> None:
    project.server.add_fault(Reply(content=SURROGATE), match="alpha one")
    project.suite("test_a.yaml", SUITE_A.replace("{contains: alpha}", "{contains: smile}", 1))
    project.suite("test_b.yaml", SUITE_B)

    result = project.run("-rA")

    result.assert_outcomes(passed=3)
    recorded = json.loads(project.recording("test_a.yaml").read_text(encoding="utf-8"))
    assert recorded["entries"]["first"][0]["response"]["text"] == "smile \ufffd end"
    assert project.recording("test_b.yaml").exists()


DEEP = "[" * 100_000 + "]" * 100_000
# Every fault mode of the fake server, each hitting one case of suite a.
SERVER_FAULTS = {
    "status 500": Reply(status=500, error="boom"),
    "status 400": Reply(status=400, error="bad argument"),
    "429 retry-after": Reply(status=429, error="slow down", retry_after=0.01),
    "429 retry-after-ms": Reply(status=429, error="slow down", retry_after_ms=10),
    "hang": Reply(hang=True),
    "drop": Reply(drop=True),
    "bad_json": Reply(bad_json=True),
    "raw_body not JSON": Reply(raw_body="<html>502 Bad Gateway</html>"),
    "raw_body deeply nested": Reply(raw_body='{"choices": ' + DEEP + "}"),
    "raw_body lone surrogate": Reply(
        raw_body='{"choices": [{"message": {"content": "alpha \\udc00"}, "finish_reason": '
        '"stop"}], "model": "grok-4.3"}'
    ),
    "raw_body 5,000-digit number": Reply(
        raw_body='{"choices": [], "usage": {"prompt_tokens": ' + "9" * 5000 + "}}"
    ),
    "huge": Reply(content="alpha " + "x" * 3_000_000),
    "latency": Reply(latency=0.05),
    "finish_reason": Reply(finish_reason="length"),
    "model": Reply(model="grok-4.3-other"),
    "usage": Reply(usage={"prompt_tokens": 7, "completion_tokens": 0}),
    "headers": Reply(headers={"x-odd": "1"}),
    "echo_authorization": Reply(status=400, error="bad request", echo_authorization=True),
}


@pytest.mark.parametrize("fault", list(SERVER_FAULTS))
def test_every_fault_of_the_fake_server_leaves_the_session_complete(
    project: Project, fault: str
) -> None:
    project.server.add_fault(SERVER_FAULTS[fault], match="alpha one")
    project.suite("test_a.yaml", SUITE_A)
    project.suite("test_b.yaml", SUITE_B)

    result = project.run("--grok-retries=1", "--grok-timeout=2", "-v")

    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(["test_a.yaml::second PASSED*", "test_b.yaml::other PASSED*"])
    assert json.loads(project.recording("test_b.yaml").read_text())["entries"]


def test_a_recordings_folder_that_cannot_be_read_fails_only_its_suite(
    project: Project,
) -> None:
    project.suite("bad/test_a.yaml", SUITE_A)
    project.suite("test_b.yaml", SUITE_B)
    (project.path / "bad" / "__recordings__").write_text("a file where the folder should be")

    result = project.run()

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "unreadable recordings: bad/__recordings__/test_a.json: cannot read the recordings "
        "file: Not a directory",
    ])
    assert project.recording("test_b.yaml").exists()


def test_a_save_that_fails_warns_keeps_the_journal_and_saves_the_other_suites(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("bad/test_a.yaml", SUITE_A)
    project.suite("test_b.yaml", SUITE_B)
    # The lock cannot be taken (as a read-only folder or a full disk would refuse it, as root).
    (project.path / "bad" / "__recordings__" / ".grokeval.lock").mkdir(parents=True)

    result = project.run()

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["WARNING bad/__recordings__/test_a.json: cannot save recordings: *"]
    )
    assert project.recording("test_b.yaml").exists()
    assert not project.recording("bad/test_a.yaml").exists()
    (project.path / "bad" / "__recordings__" / ".grokeval.lock").rmdir()
    replay(project, monkeypatch).assert_outcomes(passed=3)  # from the journal it kept
    assert project.recording("bad/test_a.yaml").exists()


def test_a_suite_name_too_long_for_a_temporary_name_is_still_recorded(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "test_" + "n" * 240 + ".yaml"  # its recordings' name is 250 bytes, the limit 255
    project.suite(name, SUITE_A)
    project.suite("test_b.yaml", SUITE_B)

    project.run().assert_outcomes(passed=3)

    assert project.recording(name).exists()
    replay(project, monkeypatch).assert_outcomes(passed=3)


def strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} written into a JSON file")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_figures_in_recordings_are_refused_and_every_report_is_still_written(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record_both(project)
    text = recording.read_text()
    text = text.replace('"latency_ms": ', '"latency_ms": 1e400, "was": ', 1)
    text = text.replace('"cost_usd": ', '"cost_usd": NaN, "was": ', 1)
    recording.write_text(text)

    monkeypatch.delenv("XAI_API_KEY")
    result = project.run(
        "--grok-record=none", "-rf", "--grok-report=out/r.json", "--grok-html=out/h.html",
        "--junitxml=out/j.xml",
    )

    result.assert_outcomes(passed=1, failed=2)
    line = line_of(text, "NaN")  # the first of the two in the file
    result.stdout.fnmatch_lines(
        [f"*test_a.json:{line}: malformed recordings file: NaN is not a JSON number*"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    strict_json((project.path / "out/r.json").read_text())
    assert (project.path / "out/h.html").read_text().rstrip().endswith("</html>")
    assert 'value="inf"' not in (project.path / "out/j.xml").read_text()


def test_the_json_writer_writes_non_finite_figures_as_null() -> None:
    document = {"cost_usd": float("nan"), "samples": [{"latency_ms": float("inf")}, 2.5]}

    written = strict_json(dumps(document))

    assert written == {"cost_usd": None, "samples": [{"latency_ms": None}, 2.5]}


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_recordings_file_that_is_no_regular_file_fails_only_its_suite(
    project: Project, kind: str
) -> None:
    project.suite("bad/test_a.yaml", SUITE_A)
    project.suite("test_b.yaml", SUITE_B)
    recordings = project.path / "bad" / "__recordings__" / "test_a.json"
    recordings.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(recordings)  # nobody writes: reading it would block the run for ever
    elif kind == "device":
        recordings.symlink_to("/dev/zero")  # reading it would never end
    else:
        recordings.mkdir()

    # In a subprocess with a deadline: broken, this hangs or fills memory.
    result = project.run_subprocess(timeout=60)

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "unreadable recordings: bad/__recordings__/test_a.json: cannot read the recordings "
        "file: not a regular file",
    ])


def test_a_sample_recorded_twice_by_a_bad_merge_fails_that_suite_naming_the_second(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record_both(project)
    document = json.loads(recording.read_text())
    (entry,) = document["entries"]["first"]
    other = {**entry, "response": {**entry["response"], "text": "the other side's answer"}}
    document["entries"]["first"].append(other)
    text = json.dumps(document, indent=2)
    recording.write_text(text)

    result = replay(project, monkeypatch)

    result.assert_outcomes(passed=1, failed=2)
    assert list(other) == ["fingerprint", "request", "response", "sample"]
    needle = f'"fingerprint": "{entry["fingerprint"]}"'
    second = text.index(needle, text.index(needle) + 1)
    line = text[:second].count("\n")  # the line before: the second entry's opening brace
    result.stdout.fnmatch_lines([
        f"unreadable recordings: __recordings__/test_a.json:{line}: malformed recordings file: "
        "'first' holds sample 0 twice; fix it by hand*",
    ])
    assert recording.read_text() == text


def test_a_fifo_named_like_a_journal_does_not_block_the_run(project: Project) -> None:
    recording = record_both(project)
    os.mkfifo(recording.parent / f".{recording.name}.99999.journal")  # nobody writes to it

    # In a subprocess with a deadline: broken, reading it blocks for ever.
    result = project.run_subprocess("--grok-record=none", timeout=60)

    result.assert_outcomes(passed=3)
