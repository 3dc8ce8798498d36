"""Issue 6: the JSON and HTML reports, JUnit properties and the baseline comparison."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from pytest_grokeval.report.schema import REPORT_SCHEMA, validator
from pytest_grokeval.report.terminal import percentile
from pytest_grokeval.testing import Reply

# The fake answers "You said: <prompt>", so a case passes when it expects words of its prompt.
SUPPORT = """
cases:
  - id: refund-window
    prompt: How many days do I have to return an item?
    expect: {contains: return an item}
  - id: opening-hours
    prompt: When is the support line open?
    expect: {icontains: SUPPORT LINE, not_contains: closed}
  - id: shipping
    prompt: Do you ship to {{country}}?
    vars: {country: [Canada, Japan, Peru]}
    expect: {contains: "{{country}}"}
  - id: warranty
    prompt: How long is the warranty on anvils?
    expect: {icontains: warranty}
  - id: greeting
    prompt: Say hello to Dana.
    expect: {starts_with: "You said", words: {max: 10}}
  - id: tone
    prompt: My parcel is late and I am angry.
    expect: {contains: sorry}
  - id: manager
    prompt: I want a manager.
    expect: {contains: [manager, escalated]}
  - id: promo
    prompt: What discount do you offer?
    marks: [{skip: promotion text not approved}]
    expect: {contains: "%"}
  - id: competitor
    prompt: Is ACME better than its rivals?
    marks: [{xfail: "names competitors, tracked in SUP-142"}]
    expect: {contains: "lifetime warranty"}
  - id: known-flake
    prompt: Tell me about ACME.
    marks: [{xfail: was flaky}]
    expect: {contains: ACME}
"""
SAMPLING = """
params: {temperature: 0.7}
cases:
  - id: poem
    prompt: Write a line about {{topic}}.
    vars: {topic: [rockets, anvils, magnets, rope]}
    repeat: 3
    expect: {contains: "{{topic}}"}
  - id: strict-poem
    prompt: Write a rhyme about {{topic}}.
    vars: {topic: [glue, tnt]}
    repeat: 2
    expect: {contains: "roses are red"}
"""
TRIAGE = """
cases:
  - id: label
    prompt: "ticket: {{label}}"
    vars: {label: [billing, shipping, product, returns, account, login, refund, warranty,
                   invoice, other]}
    expect: {regex: "ticket: [a-z]+$"}
  - id: wrong-label
    prompt: "ticket: {{label}}"
    vars: {label: [Billing, Shipping]}
    expect: {regex: "ticket: [a-z]+$"}
"""
FAILED = {
    "test_support.yaml::tone",
    "test_support.yaml::manager",
    "test_sampling.yaml::strict-poem[topic=glue]",
    "test_sampling.yaml::strict-poem[topic=tnt]",
    "test_triage.yaml::wrong-label[label=Billing]",
    "test_triage.yaml::wrong-label[label=Shipping]",
}


def thirty_cases(project: Project) -> None:
    """30 items in three suites: 21 pass, 6 fail, and a skip, an xfail and an xpass."""
    project.suite("test_support.yaml", SUPPORT)
    project.suite("test_sampling.yaml", SAMPLING)
    project.suite("test_triage.yaml", TRIAGE)
    # Latencies of 0 to 40 ms, so that the histogram has more than one bar.
    project.server.responder = lambda request: Reply(latency=len(request.prompt) % 5 / 100)


def run_report(project: Project, *args: str, name: str = "report.json") -> dict[str, Any]:
    project.run(f"--grok-report={name}", *args)
    document: dict[str, Any] = json.loads((project.path / name).read_text(encoding="utf-8"))
    return document


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in document["items"]}


def test_the_json_report_holds_every_item_and_validates_against_the_schema(
    project: Project,
) -> None:
    thirty_cases(project)

    result = project.run("--grok-report=out/report.json")

    result.assert_outcomes(passed=21, failed=6, skipped=1, xfailed=1, xpassed=1)
    document = json.loads((project.path / "out/report.json").read_text(encoding="utf-8"))
    assert list(validator().iter_errors(document)) == []
    assert list(document)[:5] == ["version", "created", "pytest_grokeval", "summary", "baseline"]
    items = by_id(document)
    assert len(items) == 30
    assert {i for i, item in items.items() if item["outcome"] == "failed"} == FAILED
    summary = document["summary"]
    assert summary["outcomes"] == {
        "passed": 21, "failed": 6, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 0,
    }
    assert summary["pass_rate"] == round(21 / 27, 4)
    assert [s["suite"] for s in summary["suites"]] == [
        "test_sampling.yaml", "test_support.yaml", "test_triage.yaml",
    ]
    # strict-poem needs every sample to pass: its first failing sample decides, so early
    # stopping sends one of its two samples per topic.
    assert summary["samples"] == summary["responses"] == 4 * 3 + 2 * 1 + 10 + 2 + 11
    assert summary["tokens"]["total"] == sum(i["tokens"]["total"] for i in items.values())
    result.stdout.fnmatch_lines(["*generated grokeval JSON report: *out?report.json*"])


def test_an_item_carries_its_request_response_checks_and_metadata(project: Project) -> None:
    thirty_cases(project)

    items = by_id(run_report(project))

    tone = items["test_support.yaml::tone"]
    line = SUPPORT.lstrip().splitlines().index("  - id: tone") + 1
    assert (tone["suite"], tone["line"], tone["name"]) == ("test_support.yaml", line, "tone")
    (sample,) = tone["samples"]
    assert sample["request"]["messages"] == [
        {"role": "user", "content": "My parcel is late and I am angry."}
    ]
    assert sample["response"]["text"] == "You said: My parcel is late and I am angry."
    assert sample["response"]["replayed"] is False
    assert sample["checks"] == [{
        "name": "contains", "passed": False, "expected": "contains 'sorry'",
        "got": "'sorry' not found",
    }]
    assert sample["passed"] is False
    assert tone["message"].startswith("check failed: contains")
    assert tone["model"] == "grok-4.3" and tone["replayed"] is False
    assert tone["tokens"]["total"] == sample["response"]["usage"]["total_tokens"]
    poem = items["test_sampling.yaml::poem[topic=rope]"]
    assert [s["sample"] for s in poem["samples"]] == [0, 1, 2]
    assert poem["repeat"] == 3 and poem["samples_passed"] == 3
    assert items["test_support.yaml::promo"]["outcome"] == "skipped"
    assert items["test_support.yaml::promo"]["message"] == "promotion text not approved"
    assert items["test_support.yaml::promo"]["samples"] == []
    assert items["test_support.yaml::competitor"]["outcome"] == "xfailed"
    assert items["test_support.yaml::known-flake"]["outcome"] == "xpassed"


def comparable(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The items without what differs between two runs of the same recordings."""
    return [{k: v for k, v in item.items() if k != "duration_s"} for item in document["items"]]


def junit_properties(path: Path) -> dict[str, dict[str, str | None]]:
    cases = ET.parse(path).getroot().iter("testcase")
    return {
        str(case.get("name")): {p.get("name") or "": p.get("value") for p in case.iter("property")}
        for case in cases
    }


def test_junit_xml_carries_model_latency_tokens_cost_and_replayed_per_item(
    project: Project,
) -> None:
    project.suite("test_support.yaml", SUPPORT)

    project.run("--junitxml=junit.xml")

    properties = junit_properties(project.path / "junit.xml")
    refund = properties["refund-window"]
    assert list(refund) == [
        "grok_model", "grok_latency_ms", "grok_tokens", "grok_cost_usd", "grok_replayed",
    ]
    assert refund["grok_model"] == "grok-4.3" and refund["grok_replayed"] == "False"
    assert float(refund["grok_latency_ms"] or "") >= 0
    assert int(refund["grok_tokens"] or "") > 0
    assert float(refund["grok_cost_usd"] or "") > 0
    # A failing check still reports what its response cost.
    assert "grok_tokens" in properties["tone"]


def test_under_xdist_the_report_and_the_junit_properties_are_the_same_as_without(
    project: Project,
) -> None:
    thirty_cases(project)
    project.run()  # record, so that both runs below replay the same responses

    plain = run_report(project, "--grok-record=none", "--junitxml=plain.xml", name="plain.json")
    distributed = run_report(
        project, "--grok-record=none", "--junitxml=xdist.xml", "-n", "2", name="xdist.json"
    )

    assert list(validator().iter_errors(distributed)) == []
    assert len(distributed["items"]) == 30
    assert comparable(distributed) == comparable(plain)
    assert distributed["summary"] == plain["summary"]
    properties = junit_properties(project.path / "xdist.xml")
    assert properties == junit_properties(project.path / "plain.xml")
    assert properties["refund-window"]["grok_replayed"] == "True"
    assert sum(1 for p in properties.values() if "grok_model" in p) == 29  # all but the skip


def test_a_baseline_lists_exactly_the_one_changed_expectation_as_a_regression(
    project: Project,
) -> None:
    thirty_cases(project)
    run_report(project, name="baseline.json")
    suite = project.path / "test_support.yaml"
    suite.write_text(
        suite.read_text().replace("expect: {contains: return an item}", "expect: {contains: 30}")
    )

    result = project.run("--grok-baseline=baseline.json", "--grok-report=now.json")

    comparison = json.loads((project.path / "now.json").read_text())["baseline"]
    assert comparison["regressions"] == [
        {"id": "test_support.yaml::refund-window", "before": "passed", "after": "failed"}
    ]
    assert [comparison[k] for k in ("fixes", "new", "removed", "changed")] == [[], [], [], []]
    result.stdout.fnmatch_lines([
        "*- grokeval baseline -*",
        "compared with baseline.json of *: 1 regression, 0 fixes, 0 new, 0 removed or not run, "
        "0 changed responses",
        "  regressed: test_support.yaml::refund-window (passed -> failed)",
    ])
    assert result.stdout.str().count("regressed:") == 1


def test_a_baseline_lists_fixes_new_and_removed_cases_and_changed_responses(
    project: Project,
) -> None:
    thirty_cases(project)
    run_report(project, name="baseline.json")
    suite = project.path / "test_support.yaml"
    text = suite.read_text().replace("expect: {contains: sorry}", "expect: {contains: angry}")
    text = text.replace("id: greeting", "id: greeting-2")
    suite.write_text(text)
    project.server.answers["Tell me about ACME"] = "ACME makes anvils."

    result = project.run(
        "--grok-baseline=baseline.json", "--grok-html=now.html", "--grok-record=all", "-v"
    )

    result.stdout.fnmatch_lines([
        "compared with baseline.json of *: 0 regressions, 1 fix, 1 new, 1 removed or not run, "
        "1 changed response",
        "  fixed: test_support.yaml::tone (failed -> passed)",
        "  new: test_support.yaml::greeting-2 (passed)",
        "  removed: test_support.yaml::greeting (was passed)",
        "  changed response: test_support.yaml::known-flake (sample 0)",
    ])
    page = (project.path / "now.html").read_text()
    assert "You said: Tell me about ACME." in page  # the baseline's text, beside the new one
    assert 'data-change="fixed"' in page and 'data-change="changed"' in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": 1,\n "items": [}', "baseline.json:2: malformed baseline: Expecting value"),
        ('{"version": 1, "items": 3}', "baseline.json:1: malformed baseline: at "),
        ("[]", "baseline.json:1: malformed baseline: at the top level, [] is not of type"),
        ('{"version": 7}', "baseline.json: baseline report version 7 is not supported"),
        (None, "baseline.json: cannot read the baseline: No such file or directory"),
        ('{"version": 1,\n "items": [NaN]}', "baseline.json:2: malformed baseline: NaN is not"),
        ('{"version": 1,\n\n "items": [1e400]}', "baseline.json:3: malformed baseline: number"),
    ],
    ids=["bad-json", "bad-shape", "not-an-object", "other-version", "missing", "nan", "huge"],
)
def test_a_malformed_baseline_stops_the_run_before_anything_is_sent(
    project: Project, content: str | None, message: str
) -> None:
    project.suite("test_support.yaml", SUPPORT)
    if content is not None:
        (project.path / "baseline.json").write_text(content)

    result = project.run("--grok-baseline=baseline.json")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert errors.startswith(f"ERROR: --grok-baseline: {message}")
    assert errors.rstrip().endswith("pass a file written by --grok-report") or content is None
    assert project.server.request_count == 0


def test_the_html_report_loads_nothing_from_outside_itself(project: Project) -> None:
    project.suite("test_links.yaml", """
        cases:
          - id: links
            prompt: 'See https://example.com/a.png and </script><script>alert(1)</script> &amp;'
            expect: {contains: example.com}
    """)

    project.run("--grok-html=report.html", "--grok-report=report.json")

    page = (project.path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "url(" not in page and "@import" not in page
    # The prompt's URL appears only as data: text in <pre> blocks and in the embedded JSON.
    outside = re.sub(r"<pre[^>]*>.*?</pre>|<script type=\"application/json\".*?</script>", "",
                     page, flags=re.S)
    assert "https://" in page and not re.search("https?:", outside)
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    embedded = re.search(r'<script type="application/json" id="grokeval-report">(.*?)</script>',
                         page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == json.loads((project.path / "report.json").read_text())


def test_the_html_report_has_a_row_per_item_and_opens_the_failures(project: Project) -> None:
    thirty_cases(project)

    project.run("--grok-html=report.html")

    page = (project.path / "report.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tbody class="case" id="[^"]+" data-id="([^"]+)" data-status="(\w+)"', page)
    assert len(rows) == 30
    assert {i for i, status in rows if status == "failed"} == FAILED
    assert page.count('<tr class="detail">') == len(FAILED)  # open; the others start hidden
    # A highlighted row per failed check of each sample, the xfailed item's included.
    assert page.count('<tr class="fail">') == 2 + 2 * 1 + 2 + 1
    assert "<svg" in page and 'class="suite-bars"' in page


def test_reports_are_replaced_atomically_and_leave_no_temporary_files(project: Project) -> None:
    project.suite("test_support.yaml", SUPPORT)
    project.run("--grok-report=out/r.json", "--grok-html=out/r.html")
    first = (project.path / "out/r.json").read_text()

    project.run("--grok-report=out/r.json", "--grok-html=out/r.html")

    assert sorted(p.name for p in (project.path / "out").iterdir()) == ["r.html", "r.json"]
    assert (project.path / "out/r.json").read_text() != first  # a new "created" time at least
    assert (project.path / "out/r.json").stat().st_mode & 0o644 == 0o644


def test_collect_only_writes_no_report_and_keeps_the_old_one(project: Project) -> None:
    project.suite("test_support.yaml", SUPPORT)
    (project.path / "report.json").write_text("the previous report")

    project.run("--co", "--grok-report=report.json", "--grok-html=report.html")

    assert (project.path / "report.json").read_text() == "the previous report"
    assert not (project.path / "report.html").exists()


def test_a_report_path_that_cannot_be_written_fails_the_run_saying_why(project: Project) -> None:
    project.suite("test_support.yaml", SUPPORT)
    (project.path / "taken").write_text("a file, not a folder")

    result = project.run("--grok-report=taken/report.json", "-k", "refund")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["grokeval: cannot write the JSON report */taken/report.json: *"])


def test_the_schema_in_the_docs_is_the_one_reports_are_validated_with() -> None:
    root = Path(__file__).parent.parent
    for name in ("README.md", "docs/reports.md"):
        path = root / name
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        found = re.search(r"<!-- report-schema -->\s*```json\n(.*?)```", text, re.S)
        if found:
            assert json.loads(found.group(1)) == REPORT_SCHEMA, f"update the schema in {name}"
            return
    pytest.fail("no <!-- report-schema --> block in README.md or docs/reports.md")


def test_the_html_assets_are_declared_as_package_data() -> None:
    root = Path(__file__).parent.parent
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["tool"]["setuptools"]["package-data"]["*"]
    assets = {p.name for p in (root / "pytest_grokeval").rglob("*") if p.suffix in (".css", ".js")}
    assert {"report.css", "report.js"} <= assets
    for name in assets | {"py.typed"}:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in declared), name


def test_latency_percentiles_are_the_values_below_which_that_share_of_requests_fall() -> None:
    hundred_and_one = [float(ms) for ms in range(1, 102)]
    assert percentile(hundred_and_one, 50) == 51.0
    assert percentile(hundred_and_one, 95) == 96.0
    assert percentile([30.0, 10.0, 20.0], 50) == 20.0
    assert percentile([7.0], 95) == 7.0


MARKED = """
import pytest

@pytest.mark.grok(prompt="What is the refund window?")
def test_refund(grok_response):
    assert "refund window" in grok_response.text

class TestTone:
    @pytest.mark.grok(prompt="Say sorry.", params={"temperature": 0})
    def test_sorry(self, grok_response):
        assert "not there" in grok_response.text

def test_unmarked():
    pass
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_marked_python_tests_are_in_the_json_and_html_reports(
    project: Project, xdist: list[str]
) -> None:
    project.suite("test_support.yaml", SUPPORT)
    project.pytester.makepyfile(test_marked=MARKED)

    result = project.run("--grok-report=report.json", "--grok-html=report.html", *xdist)

    result.assert_outcomes(passed=9, failed=3, skipped=1, xfailed=1, xpassed=1)
    document = json.loads((project.path / "report.json").read_text(encoding="utf-8"))
    assert list(validator().iter_errors(document)) == []
    items = by_id(document)
    assert len(items) == 14 and "test_marked.py::test_unmarked" not in items
    refund = items["test_marked.py::test_refund"]
    sorry = items["test_marked.py::TestTone::test_sorry"]
    assert (refund["outcome"], sorry["outcome"]) == ("passed", "failed")
    assert (refund["suite"], refund["line"], refund["name"]) == ("test_marked.py", 3, "test_refund")
    assert sorry["name"] == "TestTone::test_sorry"
    [sample] = sorry["samples"]
    assert sample["request"]["params"] == {"temperature": 0}
    assert sample["response"]["text"] == "You said: Say sorry."
    assert (sample["checks"], sample["passed"], sorry["samples_passed"]) == ([], False, 0)
    assert refund["samples_passed"] == 1 and refund["tokens"]["total"] > 0
    assert document["summary"]["outcomes"]["failed"] == 3
    page = (project.path / "report.html").read_text(encoding="utf-8")
    rows = dict(re.findall(r'<tbody class="case" id="[^"]+" data-id="([^"]+)" data-status="(\w+)"',
                           page))
    assert rows["test_marked.py::TestTone::test_sorry"] == "failed"
    assert rows["test_marked.py::test_refund"] == "passed"


def test_junit_properties_appear_once_per_item_under_reruns(project: Project) -> None:
    project.suite("test_support.yaml", SUPPORT)

    result = project.run("--junitxml=junit.xml", "--reruns", "2")

    result.assert_outcomes(passed=7, failed=2, skipped=1, xfailed=1, xpassed=1)
    assert result.parseoutcomes()["rerun"] == 4
    root = ET.parse(project.path / "junit.xml").getroot()
    for case in root.iter("testcase"):
        names = [p.get("name") for p in case.iter("property")]
        assert len(names) == len(set(names)), (case.get("name"), names)
    assert len(junit_properties(project.path / "junit.xml")["tone"]) == 5
