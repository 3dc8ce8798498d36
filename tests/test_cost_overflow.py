"""An absurd recorded cost is shown briefly, and a sum of such costs is unknown, never inf."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from conftest import Project

from pytest_grokeval.report.schema import validator

# The largest finite doubles: two of them sum to inf.
HUGE = 1.7e308
SUITE = """
    cases:
      - {id: twice, prompt: one, repeat: 2}
      - {id: dear, prompt: two, expect: {cost_usd: 1}}
"""


def recorded_at_a_huge_cost(project: Project, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """Records SUITE live, sets every recorded cost to HUGE, and replays it with every report."""
    project.suite("test_cost.yaml", SUITE)
    project.run().assert_outcomes(passed=2)
    path = project.recording("test_cost.yaml")
    document = json.loads(path.read_text())
    for entries in document["entries"].values():
        for entry in entries:
            entry["response"]["cost_usd"] = HUGE
    path.write_text(json.dumps(document))
    monkeypatch.delenv("XAI_API_KEY")
    return project.run(
        "--grok-record=none", "--grok-report=out/r.json", "--grok-html=out/h.html",
        "--junitxml=out/j.xml",
    )


def report(project: Project) -> dict[str, Any]:
    document = json.loads((project.path / "out/r.json").read_text())
    errors = [e.message for e in validator().iter_errors(document)]
    assert not errors, errors
    return dict(document)


def test_a_sum_of_recorded_costs_that_overflows_is_unknown_in_junit_and_the_json_report(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded_at_a_huge_cost(project, monkeypatch).assert_outcomes(passed=1, failed=1)

    junit = ET.parse(project.path / "out/j.xml").getroot()
    costs = {
        case.get("name"): p.get("value")
        for case in junit.iter("testcase") for p in case.iter("property")
        if p.get("name") == "grok_cost_usd"
    }
    assert costs == {"twice": "unknown", "dear": "1.7e+308"}

    document = report(project)
    assert {i["case_id"]: i["cost_usd"] for i in document["items"]} == {
        "twice": None, "dear": HUGE
    }
    summary = document["summary"]
    assert (summary["cost_usd"], summary["cost_unknown"]) == (0.0, 3)


def test_a_huge_recorded_cost_prints_in_short_form_and_the_html_says_unknown_for_its_sum(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = recorded_at_a_huge_cost(project, monkeypatch)

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "  cost_usd: expected cost at most $1",
        "*got $1.7e+308",
        "response (*, $1.7e+308, replayed):",
    ])
    page = (project.path / "out/h.html").read_text()
    for text in (result.stdout.str(), page):
        assert not re.search(r"\d{20}", text), "a cost printed with hundreds of digits"
        assert "inf" not in re.findall(r"\$\w+", text)
    card = re.search(r'<span class="label">cost</span><span class="value">([^<]*)</span>', page)
    assert card is not None and card.group(1) == "unknown"
