"""The pytest nodes: a YAML suite file and one item per case, vars choice and model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from .checks import CHECKS, CheckResult, failure_message, run_checks
from .data import Completion, FetchError
from .judge import JudgeError
from .messages import describe_response
from .run import GrokRun, Job, grader_name
from .sampling import Plan, rate_line
from .suite import CaseItemSpec, MarkSpec, SuiteError, load_suite

RUN_KEY = pytest.StashKey[GrokRun]()


class GrokFailure(Exception):
    """A failed item: its message is the whole failure text, shown without a traceback."""


class SuiteFile(pytest.File):
    """A YAML file matching grok_files; collects nothing unless its top level has `cases`."""

    def collect(self) -> Iterator[GrokItem]:
        run = self.config.stash[RUN_KEY]
        try:
            suite = load_suite(self.path, default_model=run.settings.model)
        except SuiteError as exc:
            raise self.CollectError(exc.format(run.display(self.path))) from None
        if suite is None:
            return
        judged = [c for spec in suite.items for c in spec.checks if CHECKS[c.base].needs_grader]
        run.collected[self.path] = {
            (name, request.sample)
            for spec in suite.items
            for name in [spec.name] + [grader_name(spec.name, c) for c in judged]
            for request in spec.requests
        }
        run.collected_items[self.path] = {spec.name for spec in suite.items}
        for spec in suite.items:
            item = GrokItem.from_parent(self, name=spec.name, spec=spec)
            for mark in spec.marks:
                item.add_marker(_marker(self.config, run.marks, mark))
            item.extra_keyword_matches.update(spec.tags)
            yield item


def _marker(config: pytest.Config, registered: set[str], mark: MarkSpec) -> pytest.MarkDecorator:
    # Marks named in YAML are registered so that --strict-markers accepts them and -m finds them.
    if mark.name not in ("skip", "xfail") and mark.name not in registered:
        config.addinivalue_line("markers", f"{mark.name}: set in a grokeval YAML suite")
        registered.add(mark.name)
    decorator: pytest.MarkDecorator = getattr(pytest.mark, mark.name)
    return decorator(**mark.kwargs) if mark.kwargs else decorator


class GrokItem(pytest.Item):
    """Checks the already-fetched responses of one case against its expectations."""

    def __init__(self, *, spec: CaseItemSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self._samples: list[dict[str, Any]] = []

    def job(self) -> Job:
        spec = self.spec
        return Job(
            self.nodeid, spec.name, self.path, spec.requests, spec.checks, spec.min_pass_rate
        )

    def result(self) -> dict[str, Any]:
        """What reports show of this item; filled in by setup, JSON-compatible."""
        return {
            "id": self.nodeid,
            "suite": self.config.stash[RUN_KEY].display(self.path),
            "line": self.spec.line + 1,
            "name": self.spec.name,
            "case_id": self.spec.case_id,
            "repeat": self.spec.repeat,
            "min_pass_rate": self.spec.min_pass_rate,
            "samples": self._samples,
        }

    def setup(self) -> None:
        """Check every fetched sample; a judge that gave no verdict makes this an error."""
        run = self.config.stash[RUN_KEY]
        self._samples = []
        self._checked: list[tuple[Completion, list[CheckResult]]] = []
        self._errors: list[FetchError] = []
        outcomes = run.samples(self.nodeid, self.spec.requests)
        for request, outcome in zip(self.spec.requests, outcomes, strict=False):
            sample: dict[str, Any] = {
                "sample": request.sample,
                "fingerprint": request.fingerprint,
                "request": request.identity(),
            }
            self._samples.append(sample)
            if isinstance(outcome, FetchError):
                sample["error"] = outcome.to_json()
                self._errors.append(outcome)
                continue
            sample["response"] = {**outcome.to_json(), "replayed": outcome.replayed}
            graded = run.grades(self.nodeid, request.sample, self.spec.checks)
            problem: str | None = None
            try:
                results = run_checks(self.spec.checks, outcome, graded)
            except JudgeError as exc:
                sample["error"] = {"message": str(exc), "status": None, "kind": "judge"}
                problem = f"judge error in sample {request.sample}: {exc}"
            if problem is not None:
                # An error, not a failure, and without a traceback: the message says it all.
                pytest.fail(problem, pytrace=False)
            sample["checks"] = [
                {"name": r.check.name, "passed": r.passed, "expected": r.expected, "got": r.got}
                for r in results
            ]
            sample["passed"] = all(r.passed for r in results)
            self._checked.append((outcome, results))

    def runtest(self) -> None:
        if self._errors:
            raise GrokFailure(fetch_failure(self._errors))
        completions = [completion for completion, _ in self._checked]
        self._record_properties(completions)
        failures = [
            message
            for completion, results in self._checked
            if (message := failure_message(results, completion)) is not None
        ]
        passes = len(self._checked) - len(failures)
        plan = Plan(self.spec.repeat, self.spec.min_pass_rate)
        if self.spec.repeat == 1:
            if failures:
                raise GrokFailure(failures[0])
        elif plan.verdict(passes, len(failures)) is not True:
            raise GrokFailure(self._rate_failure(plan, passes, failures))
        # Failures already show the responses; passes show them under -rP or -rA only, since
        # every report keeps its sections until the run ends.
        if not any(char in self.config.option.reportchars for char in "PA"):
            return
        if self.spec.repeat > 1:
            rate = rate_line(plan, passes, len(failures))
            self.add_report_section("call", "grok pass rate", rate)
        for completion in completions:
            self.add_report_section("call", "grok response", describe_response(completion, 4000))

    def _rate_failure(self, plan: Plan, passes: int, failures: list[str]) -> str:
        lines = [rate_line(plan, passes, len(failures))]
        for (completion, results), sample in zip(self._checked, self._samples, strict=False):
            failed = [r.check.name for r in results if not r.passed]
            verdict = "FAIL " + ", ".join(failed) if failed else "pass"
            lines.append(f"  sample {sample['sample']}: {verdict}: {completion.text[:60]!r}")
        return "\n".join(lines) + "\n\nfirst failing sample:\n" + failures[0]

    def _record_properties(self, completions: list[Completion]) -> None:
        if not completions:
            return
        first = completions[0]
        self.user_properties += [
            ("grok_model", first.model),
            ("grok_latency_ms", round(max(c.latency_ms for c in completions), 1)),
            ("grok_tokens", sum(c.usage.total_tokens for c in completions)),
            ("grok_cost_usd", round(sum(c.cost_usd or 0.0 for c in completions), 8)),
            ("grok_replayed", all(c.replayed for c in completions)),
        ]

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, GrokFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, self.spec.line, f"grok case: {self.spec.name}"


def fetch_failure(errors: list[FetchError]) -> str:
    """The one-line failure of a request that produced no response."""
    first = errors[0]
    lead = {
        "missing": "no recorded response",
        "recording": "unreadable recordings",
        "timeout": "request timed out",
        "budget": "request not sent",
        "interrupted": "request not sent",
        "leader": "no response",
    }.get(first.kind, "request failed")
    more = f" (and {len(errors) - 1} more samples)" if len(errors) > 1 else ""
    return f"{lead}: {first.message}{more}"


def statically_skipped(item: pytest.Item) -> bool:
    """Items that will be skipped without running: their requests are never sent."""
    if item.get_closest_marker("skip") is not None:
        return True
    for mark in item.iter_markers("skipif"):
        conditions = mark.args or (mark.kwargs.get("condition"),)
        if any(c is True for c in conditions):
            return True
    xfail = item.get_closest_marker("xfail")
    return xfail is not None and xfail.kwargs.get("run", True) is False
