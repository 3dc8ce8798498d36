"""The pytest nodes: a YAML suite file and one item per case, vars choice and model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr
from _pytest._io import TerminalWriter

from pytest_grokeval.checks.judge import JudgeError
from pytest_grokeval.checks.registry import CHECKS, CheckResult, failure_message, run_checks
from pytest_grokeval.collect.suite import CaseItemSpec, MarkSpec, SuiteError, load_suite
from pytest_grokeval.data import ChatRequest, Completion, FetchError, Outcome, cost_sum
from pytest_grokeval.messages import describe_response, no_text
from pytest_grokeval.prefetch.jobs import Job, grader_name
from pytest_grokeval.prefetch.sampling import Plan, rate_line
from pytest_grokeval.state import RUN_KEY, Collection


class GrokFailure(Exception):
    """A failed item: its message is the whole failure text, shown without a traceback."""


class SuiteFile(pytest.File):
    """A YAML file matching grok_files; collects nothing unless its top level has `cases`."""

    def collect(self) -> Iterator[GrokItem]:
        """One GrokItem per case, vars choice and model; raises CollectError listing the file's
        problems with their lines."""
        run = self.config.stash[RUN_KEY]
        try:
            suite = load_suite(
                self.path,
                default_model=run.settings.model,
                default_api=run.settings.api,
                on_skip=self._skipped,
            )
        except SuiteError as exc:
            raise self.CollectError(exc.format(run.display(self.path))) from None
        if suite is None:
            return
        judged = [c for spec in suite.items for c in spec.checks if CHECKS[c.base].needs_grader]
        run.collection.add_file(
            self.path,
            {
                (name, request.sample)
                for spec in suite.items
                for name in [spec.name] + [grader_name(spec.name, c) for c in judged]
                for request in spec.requests
            },
            {spec.name for spec in suite.items},
        )
        for spec in suite.items:
            nodeid = self._item_nodeid(spec)
            item = GrokItem.from_parent(self, name=spec.name, nodeid=nodeid, spec=spec)
            for mark in spec.marks:
                item.add_marker(_marker(self.config, run.collection, mark))
            item.extra_keyword_matches.update(spec.tags)
            yield item

    def _item_nodeid(self, spec: CaseItemSpec) -> str:
        # Not `_nodeid`: pytest 8 keeps the node's own id in that attribute.
        # pytest 9.2 compares structured ids (names, then params in brackets), which --lf,
        # --ff, --sw and --nf parse from the cached strings. An id built from the name alone
        # would hold "case[a=1]" as one name and never equal them. Given as text, the id is
        # parsed the way the cache is, as the ids of pytest's own parametrized functions are.
        return f"{self.nodeid}::{spec.name}"

    def _skipped(self, reason: str) -> None:
        # A file meant as a suite that collects nothing would otherwise pass silently.
        display = self.config.stash[RUN_KEY].display(self.path)
        self.warn(pytest.PytestCollectionWarning(f"{display}: {reason}"))


def _marker(config: pytest.Config, collection: Collection, mark: MarkSpec) -> pytest.MarkDecorator:
    # Marks named in YAML are registered so that --strict-markers accepts them and -m finds them.
    if mark.name not in ("skip", "xfail") and collection.register_mark(mark.name):
        config.addinivalue_line("markers", f"{mark.name}: set in a grokeval YAML suite")
    decorator: pytest.MarkDecorator = getattr(pytest.mark, mark.name)
    return decorator(**mark.kwargs) if mark.kwargs else decorator


class GrokItem(pytest.Item):
    """Checks the already-fetched responses of one case against its expectations."""

    def __init__(self, *, spec: CaseItemSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.originalname = spec.case_id  # as pytest's parametrized functions have it
        # Per fetched sample: its request, outcome, check results and any judge problem.
        self._seen: list[Sample] = []

    def job(self) -> Job:
        """What the prefetch must fetch for this item: its samples and the checks that stop
        sampling."""
        spec = self.spec
        return Job(
            self.nodeid, spec.name, self.path, spec.requests, spec.checks, spec.min_pass_rate
        )

    def result(self) -> dict[str, Any]:
        """What reports show of this item, JSON-compatible; built only when a report asks."""
        return {
            "id": self.nodeid,
            "suite": self.config.stash[RUN_KEY].display(self.path),
            "line": self.spec.line + 1,
            "name": self.spec.name,
            "case_id": self.spec.case_id,
            "repeat": self.spec.repeat,
            "min_pass_rate": self.spec.min_pass_rate,
            "samples": [sample.to_json() for sample in self._seen],
        }

    def setup(self) -> None:
        """Check every fetched sample; a judge that gave no verdict makes this an error."""
        run = self.config.stash[RUN_KEY]
        self._seen = []
        outcomes = run.results.samples(self.nodeid, self.spec.requests)
        for request, outcome in zip(self.spec.requests, outcomes, strict=False):
            sample = Sample(request, outcome)
            self._seen.append(sample)
            if isinstance(outcome, FetchError):
                continue
            # The prefetch checked the samples it needed verdicts for; each check runs once.
            graded = run.results.grades(self.nodeid, request.sample, self.spec.checks)
            sample.graded = graded
            checked = run.results.kept(self.nodeid, request.sample, self.spec.checks)
            if checked is None:
                try:
                    checked = run_checks(self.spec.checks, outcome, graded)
                except JudgeError as exc:
                    checked = exc
            if isinstance(checked, JudgeError):
                sample.problem = f"judge error in sample {request.sample}: {checked}"
            else:
                sample.results = checked
            if sample.problem is not None:
                # An error, not a failure, and without a traceback: the message says it all.
                pytest.fail(sample.problem, pytrace=False)

    def runtest(self) -> None:
        """Check the prefetched samples; raises GrokFailure with the whole failure text when the
        pass rate is not met or a fetch failed."""
        errors = [s.outcome for s in self._seen if isinstance(s.outcome, FetchError)]
        if errors:
            raise GrokFailure(fetch_failure(errors))
        checked = [(s.outcome, s.results or []) for s in self._seen]
        completions = [c for c, _ in checked if isinstance(c, Completion)]
        self._record_properties(completions)
        failures = [
            message
            for completion, results in checked
            if isinstance(completion, Completion)
            and (message := failure_message(results, completion)) is not None
        ]
        passes = len(checked) - len(failures)
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
        for sample in self._seen:
            failed = [r.check.name for r in sample.results or [] if not r.passed]
            verdict = "FAIL " + ", ".join(failed) if failed else "pass"
            outcome = sample.outcome
            if isinstance(outcome, Completion) and not outcome.has_text:
                shown = no_text(outcome)
            else:
                shown = repr(outcome.text[:60] if isinstance(outcome, Completion) else "")
            lines.append(f"  sample {sample.request.sample}: {verdict}: {shown}")
        return "\n".join(lines) + "\n\nfirst failing sample:\n" + failures[0]

    def _record_properties(self, completions: list[Completion]) -> None:
        if not completions:
            return
        first = completions[0]
        properties: list[tuple[str, object]] = [
            ("grok_model", first.model),
            ("grok_latency_ms", _slowest(completions)),
            ("grok_tokens", _total_tokens(completions)),
            ("grok_cost_usd", _total_cost(completions)),
            ("grok_replayed", all(c.replayed for c in completions)),
        ]
        # A rerun (pytest-rerunfailures) runs this item object again: replace, never append.
        ours = {name for name, _ in properties}
        kept = [(name, value) for name, value in self.user_properties if name not in ours]
        self.user_properties[:] = kept + properties

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """A GrokFailure is shown as its text alone, without a traceback."""
        if isinstance(excinfo.value, GrokFailure):
            return FailureRepr(str(excinfo.value))
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int, str]:
        """(path, 0-based line of the case, 'grok case: <name>') for pytest's report headers."""
        return self.path, self.spec.line, f"grok case: {self.spec.name}"


@dataclass(frozen=True)
class _Crash:
    message: str

    def __str__(self) -> str:  # what --tb=line prints
        return self.message.partition("\n")[0]


class FailureRepr(TerminalRepr):
    """A failed item's text. Its `reprcrash` is what pytest 8 reads to end the short summary
    line with the failure's first line (pytest 9 also reads a plain string)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reprcrash = _Crash(text)

    def toterminal(self, tw: TerminalWriter) -> None:
        """Write the failure text line by line."""
        for line in self.text.splitlines():
            tw.line(line)


def _slowest(completions: list[Completion]) -> float | str:
    # The unknown one may be the slowest: a max over the others would understate it.
    latencies = [c.latency_ms for c in completions if c.latency_ms is not None]
    return round(max(latencies), 1) if len(latencies) == len(completions) else "unknown"


def _total_tokens(completions: list[Completion]) -> int | str:
    usages = [c.usage for c in completions]
    known = [u.total_tokens for u in usages if u is not None]
    return sum(known) if len(known) == len(usages) else "unknown"


def _total_cost(completions: list[Completion]) -> float | str:
    costs = [c.cost_usd for c in completions if c.cost_usd is not None]
    total = cost_sum(costs) if len(costs) == len(completions) else None
    return "unknown" if total is None else total


@dataclass
class Sample:
    """One fetched sample of an item, as setup checked it."""

    request: ChatRequest
    outcome: Outcome
    results: list[CheckResult] | None = None
    problem: str | None = None  # a judge that gave no verdict
    graded: dict[str, Outcome] = field(default_factory=dict)  # grader replies by check name

    def to_json(self) -> dict[str, Any]:
        """The sample as the JSON report holds it: sample, fingerprint, request, then response and
        checks, or error."""
        data: dict[str, Any] = {
            "sample": self.request.sample,
            "fingerprint": self.request.fingerprint,
            "request": self.request.identity(),
        }
        if isinstance(self.outcome, FetchError):
            data["error"] = self.outcome.to_json()
            return data
        data["response"] = {**self.outcome.to_json(), "replayed": self.outcome.replayed}
        judged = [
            {"check": name, "response": {**reply.to_json(), "replayed": reply.replayed}}
            for name, reply in self.graded.items()
            if isinstance(reply, Completion)
        ]
        if judged:
            data["judge"] = judged
        if self.problem is not None:
            data["error"] = {"message": self.problem, "status": None, "kind": "judge"}
        if self.results is not None:
            data["checks"] = [
                {"name": r.check.name, "passed": r.passed, "expected": r.expected, "got": r.got}
                for r in self.results
            ]
            data["passed"] = all(r.passed for r in self.results)
        return data


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
