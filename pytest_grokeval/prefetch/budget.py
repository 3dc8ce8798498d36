"""--grok-max-cost before anything is sent: every model priced, the estimate under the limit."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_grokeval.checks.judge import parse_rubric
from pytest_grokeval.checks.registry import CHECKS
from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.accounting import over_estimate_refusal, unpriced_refusal
from pytest_grokeval.engine.budgets import estimate_request_cost
from pytest_grokeval.engine.pricing import price_for
from pytest_grokeval.options import Settings
from pytest_grokeval.prefetch.jobs import Job


class BudgetExceeded(Exception):
    """The run's estimated cost is over --grok-max-cost: nothing is sent."""


def grader_models(settings: Settings, jobs: Sequence[Job]) -> set[str]:
    """The models judge checks would call, for the budget's price check."""
    default = settings.judge_model or settings.model
    return {
        parse_rubric(check.arg).model or default
        for job in jobs
        for check in job.checks
        if CHECKS[check.base].needs_grader
    }


def check_budget(settings: Settings, requests: Sequence[ChatRequest], graders: set[str]) -> None:
    """Refuse the run when a model has no price or the estimate (US dollars, duplicates
    counted once) is over --grok-max-cost. Raises BudgetExceeded."""
    limit = settings.max_cost
    if limit is None or not requests:
        return
    prices = settings.prices
    unique = {r.fingerprint: r for r in requests}
    models = {r.model for r in unique.values()} | graders
    unpriced = sorted(m for m in models if price_for(m, prices) is None)
    if unpriced:
        raise BudgetExceeded(unpriced_refusal(unpriced, prices))
    estimate = sum(estimate_request_cost(r, prices) or 0.0 for r in unique.values())
    if estimate > limit:
        raise BudgetExceeded(over_estimate_refusal(len(unique), estimate, limit))
