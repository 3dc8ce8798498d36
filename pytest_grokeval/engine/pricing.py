"""Cost of a completion: the API's own figure when it sends one, else a dated price table."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_grokeval.data import Usage

# xAI reports `usage.cost_in_usd_ticks` on chat completions; one US dollar is 1e10 ticks.
TICKS_PER_USD = 10_000_000_000

# USD per million tokens: input, cached input, output. Used when the API sends no cost, and for
# the estimate that --grok-max-cost checks before a run. Read from xAI's model pages as stored up
# to this date (shared/research/api-client.md §1.1); where sources disagree the higher price is
# kept, because an estimate that guards a budget should not come out low.
PRICES_AS_OF = "2026-11-01"


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float


PRICES: dict[str, Price] = {
    "grok-4.3": Price(1.25, 0.20, 2.50),
    # docs.x.ai, March 2026; a gateway listed $1.25 / $2.50 in July 2026, unconfirmed by xAI.
    "grok-4.20-0309-reasoning": Price(2.00, 0.20, 6.00),
    "grok-4.20-0309-non-reasoning": Price(2.00, 0.20, 6.00),
    "grok-4.20-multi-agent-0309": Price(2.00, 0.20, 6.00),
    # Listed by a gateway in July 2026 with no cached price; not yet seen on docs.x.ai.
    "grok-4.5": Price(2.00, 2.00, 6.00),
    "grok-build-0.1": Price(1.00, 1.00, 2.00),
    "grok-3-mini": Price(0.30, 0.075, 0.50),
}
# Retired names redirect to grok-4.3 and are billed at its price (xAI, 2026-05-15).
FALLBACK_PRICE = PRICES["grok-4.3"]


def price_for(model: str) -> Price:
    """The table price for a model, falling back to grok-4.3's for unknown or retired names."""
    return PRICES.get(model, FALLBACK_PRICE)


def cost_from_usage(model: str, usage: Usage, cost_ticks: int | None) -> float:
    """The cost in USD: exact from ticks when given, else estimated from the price table."""
    if cost_ticks is not None:
        return cost_ticks / TICKS_PER_USD
    price = price_for(model)
    uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
    return (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + usage.output_tokens * price.output
    ) / 1_000_000


def estimate_cost(model: str, prompt_chars: int, max_tokens: int) -> float:
    """An upper-bound guess before sending: four characters a token, every output token used."""
    price = price_for(model)
    return ((prompt_chars / 4) * price.input + max_tokens * price.output) / 1_000_000
