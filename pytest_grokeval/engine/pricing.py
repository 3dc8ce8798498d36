"""Cost of a completion: the API's own figure when it sends one, else a dated price table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_grokeval.data import Usage

# xAI reports `usage.cost_in_usd_ticks` on chat completions; one US dollar is 1e10 ticks.
TICKS_PER_USD = 10_000_000_000

# USD per million tokens: input, cached input, output. Used when the API sends no cost, and for
# the estimate that --grok-max-cost checks before a run. Source: docs.x.ai/developers/pricing
# and the model cards as summarised in shared/research/xai-api-2026.md §1.4, read on this date.
# Where sources disagree the higher price is kept: an estimate that guards a budget should not
# come out low. A model missing here has an unknown cost (ini `grok_prices` can price it).
PRICES_AS_OF = "2026-11-30"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    cached_input: float
    output: float


_GROK_4_3 = Price(1.25, 0.20, 2.50)
PRICES: dict[str, Price] = {
    "grok-4.3": _GROK_4_3,
    # Repriced from $2 / $6 (docs.x.ai/developers/pricing, 2026).
    "grok-4.20-0309-reasoning": _GROK_4_3,
    "grok-4.20-0309-non-reasoning": _GROK_4_3,
    "grok-4.20-reasoning": _GROK_4_3,
    "grok-4.20-non-reasoning": _GROK_4_3,
    "grok-4.20-multi-agent-0309": Price(2.00, 0.20, 6.00),
    "grok-4.5": Price(2.00, 0.50, 6.00),
    # Above 200 K prompt tokens input costs $4; this table keeps the lower tier.
    "grok-4.6": Price(2.00, 0.50, 6.00),
    "grok-4.7": Price(2.00, 0.50, 6.00),
    # No cached price published: cached input is priced as input.
    "grok-build-0.1": Price(1.00, 1.00, 2.00),
}
# Retired on 2026-05-15: redirected to grok-4.3 and billed at its price (models.dev PR #1790).
RETIRED = (
    "grok-3", "grok-3-mini", "grok-3-mini-fast", "grok-4", "grok-4-0709", "grok-4-fast",
    "grok-4-fast-reasoning", "grok-4-fast-non-reasoning", "grok-4-1-fast",
    "grok-4-1-fast-reasoning", "grok-4-1-fast-non-reasoning", "grok-code-fast-1",
)

Prices = Mapping[str, Price]


def price_for(model: str, extra: Prices | None = None) -> Price | None:
    """The price of a model: `extra` (ini grok_prices) first, then the table; None if unknown.

    A `-latest` alias is priced as its model, a retired name as grok-4.3.
    """
    for name in (model, model.removesuffix("-latest")):
        if extra and name in extra:
            return extra[name]
        if name in PRICES:
            return PRICES[name]
        if name in RETIRED:
            return _GROK_4_3
    return None


def cost_from_usage(
    model: str, usage: Usage | None, cost_ticks: int | None, extra: Prices | None = None
) -> float | None:
    """The cost in USD: exact from ticks when given, else from the price table; None if unknown."""
    if cost_ticks is not None:
        return cost_ticks / TICKS_PER_USD
    price = price_for(model, extra)
    if usage is None or price is None:
        return None
    uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
    return (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + usage.output_tokens * price.output
    ) / 1_000_000


def estimate_cost(
    model: str, prompt_chars: int, max_tokens: int, extra: Prices | None = None
) -> float | None:
    """An upper-bound guess before sending: four characters a token, every output token used.

    None when the model has no known price.
    """
    price = price_for(model, extra)
    if price is None:
        return None
    return ((prompt_chars / 4) * price.input + max_tokens * price.output) / 1_000_000
