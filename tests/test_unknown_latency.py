"""A recording whose latency is null replays as unknown latency, never as 0 ms."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from conftest import Project

from pytest_grokeval.report.schema import validator

# Two cases whose latency the recording will forget, checked both ways, and one it keeps.
SUITE = """
    cases:
      - {id: at_most, prompt: one, expect: {latency_ms: 100}}
      - {id: not_slow, prompt: two, expect: {not_latency_ms: {min: 100000}}}
      - {id: kept, prompt: three}
"""


def report(project: Project) -> dict[str, Any]:
    document = json.loads((project.path / "out/r.json").read_text())
    errors = [e.message for e in validator().iter_errors(document)]
    assert not errors, errors
    return dict(document)


def recorded_with_latencies(project: Project, latencies: dict[str, float | None]) -> None:
    """Records SUITE live, then edits the recording as a hand or another tool might."""
    project.suite("test_lat.yaml", SUITE)
    project.run().assert_outcomes(passed=3)
    path = project.recording("test_lat.yaml")
    document = json.loads(path.read_text())
    for case, latency in latencies.items():
        (entry,) = document["entries"][case]
        entry["response"]["latency_ms"] = latency
    path.write_text(json.dumps(document))


def replay(project: Project, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.delenv("XAI_API_KEY")
    return project.run(
        "--grok-record=none", "-rf", "--grok-report=out/r.json", "--grok-html=out/h.html",
        "--junitxml=out/j.xml",
    )


def test_a_null_recorded_latency_fails_latency_checks_both_ways_saying_it_is_unknown(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded_with_latencies(project, {"at_most": None, "not_slow": None, "kept": 42.0})

    result = replay(project, monkeypatch)

    result.assert_outcomes(passed=1, failed=2)
    unknown = "got the latency is unknown: the recording holds none"
    result.stdout.fnmatch_lines([
        "  latency_ms: expected took at most 100 ms", f"*{unknown}",
        "response (*, latency unknown, *",
        "  not_latency_ms: expected took less than 100000 ms", f"*{unknown}",
        "response (*, latency unknown, *",
    ])
    result.stdout.no_fnmatch_line("*got 0 ms*")


def test_a_null_recorded_latency_is_null_in_every_report_and_left_out_of_the_percentiles(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded_with_latencies(project, {"at_most": None, "not_slow": None, "kept": 42.0})

    replay(project, monkeypatch).assert_outcomes(passed=1, failed=2)

    document = report(project)
    latency = {item["case_id"]: item["latency_ms"] for item in document["items"]}
    assert latency == {"at_most": None, "not_slow": None, "kept": 42.0}
    responses = [s["response"] for item in document["items"] for s in item["samples"]]
    assert [r["latency_ms"] for r in responses] == [None, None, 42.0]
    assert document["summary"]["latency_ms"] == {"p50": 42.0, "p95": 42.0, "max": 42.0,
                                                 "unknown": 2}

    junit = ET.parse(project.path / "out/j.xml").getroot()
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in junit.iter("testcase")
    }
    assert [properties[name]["grok_latency_ms"] for name in ("at_most", "not_slow", "kept")] == [
        "unknown", "unknown", "42.0"
    ]

    page = (project.path / "out/h.html").read_text()
    card = re.search(r'<span class="label">latency p50</span><span class="value">([^<]*)</span>'
                     r'<span class="sub">([^<]*)</span>', page)
    assert card is not None
    assert card.groups() == ("42 ms", "p95 42 ms, max 42 ms; 2 responses of unknown latency")
    assert "Latency per response, 2 of unknown latency" in page
    # The latency column of the table, then each sample's facts.
    cells = re.findall(r'<td>0/1</td><td>([^<]*)</td>|<td>1/1</td><td>([^<]*)</td>', page)
    assert cells == [("unknown", ""), ("unknown", ""), ("", "42 ms")]
    assert page.count("&middot; latency unknown &middot;") == 2


def test_when_every_latency_is_unknown_the_reports_say_unknown_not_0_ms(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded_with_latencies(project, {"at_most": None, "not_slow": None, "kept": None})

    replay(project, monkeypatch).assert_outcomes(passed=1, failed=2)

    summary = report(project)["summary"]["latency_ms"]
    assert summary == {"p50": None, "p95": None, "max": None, "unknown": 3}
    page = (project.path / "out/h.html").read_text()
    assert re.search(
        r'<span class="label">latency p50</span><span class="value">unknown</span>', page
    )
    assert "&middot; 0 ms" not in page and "<td>0 ms</td>" not in page
    assert page.count("&middot; latency unknown &middot;") == 3


def test_an_item_whose_samples_include_an_unknown_latency_has_no_slowest_sample(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("test_lat.yaml", "cases:\n  - {id: twice, prompt: four, repeat: 2}\n")
    project.run().assert_outcomes(passed=1)
    path = project.recording("test_lat.yaml")
    document = json.loads(path.read_text())
    first, second = document["entries"]["twice"]
    first["response"]["latency_ms"], second["response"]["latency_ms"] = None, 42.0
    path.write_text(json.dumps(document))

    replay(project, monkeypatch).assert_outcomes(passed=1)

    # The unknown one may be the slowest: 42 ms would understate the item.
    (item,) = report(project)["items"]
    assert [s["response"]["latency_ms"] for s in item["samples"]] == [None, 42.0]
    assert item["latency_ms"] is None
    junit = ET.parse(project.path / "out/j.xml").getroot()
    (latency,) = [p.get("value") for p in junit.iter("property")
                  if p.get("name") == "grok_latency_ms"]
    assert latency == "unknown"
