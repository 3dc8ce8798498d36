"""Issue 6: the HTML report in headless Chromium: every row, the status filter, no errors.

Skipped where no Chromium is installed; CI installs Debian's ``chromium`` package. Set
GROKEVAL_ARTIFACTS to a folder to keep the report and its screenshot there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Project
from test_reports import FAILED, thirty_cases

BROWSER = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium or chromium-browser on PATH")


class Page(HTMLParser):
    """What a dumped DOM shows: each case row's id and visibility, and the root's attributes."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.cases: dict[str, bool] = {}  # data-id -> visible
        self.shown = ""
        self._in_shown = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.root = attributes
        elif tag == "tbody" and attributes.get("class") == "case":
            self.cases[attributes["data-id"] or ""] = "hidden" not in attributes
        self._in_shown = attributes.get("id") == "shown"

    def handle_data(self, data: str) -> None:
        if self._in_shown:
            self.shown += data

    @property
    def visible(self) -> set[str]:
        return {case for case, visible in self.cases.items() if visible}


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once, with a fresh profile and nothing that calls home."""
    assert BROWSER is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)


def open_page(tmp_path: Path, report: Path, fragment: str = "") -> Page:
    """The DOM after the page's script ran, failing on any console message or script error."""
    result = chromium(tmp_path, "--dump-dom", report.as_uri() + fragment)
    # The page logs nothing itself, so any console line is an error or a CSP violation.
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    page = Page(result.stdout)
    assert page.root.get("data-js-error") is None
    assert page.root.get("data-ready") == "true", "the page's script did not finish"
    return page


def test_the_report_of_thirty_cases_renders_every_row_and_filters_to_the_failed_ones(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    thirty_cases(project)
    project.run("--grok-html=report.html", "--grok-report=report.json")
    report = project.path / "report.html"
    items = json.loads((project.path / "report.json").read_text())["items"]
    failed = {item["id"] for item in items if item["outcome"] == "failed"}
    assert failed == FAILED
    scratch = tmp_path_factory.mktemp("chromium")

    everything = open_page(scratch, report)
    only_failed = open_page(scratch, report, "#status=failed")

    assert len(everything.cases) == 30
    assert everything.visible == {item["id"] for item in items}
    assert everything.shown == "30 of 30 cases"
    assert only_failed.visible == failed
    assert only_failed.shown == f"{len(failed)} of 30 cases"
    screenshot = scratch / "report.png"
    chromium(scratch, f"--screenshot={screenshot}", "--window-size=1280,2000", report.as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
    keep = os.environ.get("GROKEVAL_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "report.png")
        shutil.copy(report, Path(keep) / "report.html")


def test_status_suite_and_search_filters_combine_and_come_from_the_url(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    thirty_cases(project)
    project.run("--grok-html=report.html")
    scratch = tmp_path_factory.mktemp("chromium")
    report = project.path / "report.html"

    searched = open_page(scratch, report, "#suite=test_triage.yaml&q=SHIPPING")
    combined = open_page(scratch, report, "#status=failed&suite=test_triage.yaml&q=shipping")

    # The search ignores case and reads the prompts and responses in the closed detail rows.
    assert searched.visible == {
        "test_triage.yaml::label[label=shipping]", "test_triage.yaml::wrong-label[label=Shipping]"
    }
    assert combined.visible == {"test_triage.yaml::wrong-label[label=Shipping]"}
