"""Every attempt counted: tokens and cost reported, cost possibly billed, and the cost budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_grokeval.collect.yamlnodes import did_you_mean
from pytest_grokeval.data import ChatRequest, Completion
from pytest_grokeval.engine.budgets import estimate_request_cost
from pytest_grokeval.engine.pricing import PRICES, PRICES_AS_OF, Prices


@dataclass
class Spending:
    """What the run's attempts cost; the engine's stats extend it (plain fields, for xdist)."""

    attempts: int = 0  # HTTP attempts that went out, retries included
    prompt_tokens: int = 0  # over responses that reported usage
    output_tokens: int = 0
    cost_usd: float = 0.0  # over responses with a known cost
    costed: int = 0  # responses with a known cost: what cost_usd sums
    # Attempts the API may have billed without saying what: timed out, dropped after sending,
    # a malformed 200, or a response without usage or price. Each counts its upper estimate.
    unsettled: int = 0
    possible_cost_usd: float = 0.0
    unpriced: int = 0  # unsettled attempts whose model has no known price: not in the estimate
    lost: int = 0  # unsettled attempts that brought no usable response: tokens unknown
    no_usage: int = 0  # responses without valid usage: their tokens are unknown

    @property
    def committed_usd(self) -> float:
        """Known cost plus every possibly billed estimate: what --grok-max-cost compares."""
        return self.cost_usd + self.possible_cost_usd


class Ledger:
    """Books each attempt into a Spending, and says when the cost budget forbids another."""

    def __init__(
        self, spending: Spending, max_cost: float | None, prices: Prices | None = None
    ) -> None:
        self.spending = spending
        self._max_cost = max_cost
        self._prices = prices
        self._estimates: dict[str, float | None] = {}
        # Upper estimates of the attempts admitted and not yet ended: they may all be billed, so
        # each admission counts the others, whatever the concurrency.
        self._in_flight_usd = 0.0

    def estimate(self, request: ChatRequest) -> float | None:
        """One attempt's upper cost estimate in USD (None: unpriced model), computed once."""
        key = request.fingerprint
        if key not in self._estimates:
            self._estimates[key] = estimate_request_cost(request, self._prices)
        return self._estimates[key]

    def refusal(self, request: ChatRequest) -> str | None:
        """Why the next attempt of `request` must not be sent, or None when it may.

        It may when the known cost, the possibly billed estimates, the estimates of the attempts
        in flight and its own estimate stay within --grok-max-cost.
        """
        limit = self._max_cost
        if limit is None:
            return None
        s = self.spending
        spent = s.committed_usd
        estimate = self.estimate(request) or 0.0
        in_flight = self._in_flight_usd
        if spent + in_flight + estimate <= limit:
            return None
        digits = _digits(spent + in_flight + estimate, limit)
        possible = (
            f" (${s.possible_cost_usd:.{digits}f} of it possibly billed)" if s.unsettled else ""
        )
        if spent >= limit:
            return (
                f"the run has already spent ${spent:.{digits}f}{possible} of --grok-max-cost "
                f"${limit:.12g}"
            )
        flying = ""
        if in_flight:
            flying = f", attempts in flight could cost up to ${in_flight:.{digits}f},"
        return (
            f"the run has spent ${spent:.{digits}f}{possible}{flying} and this attempt could cost "
            f"up to ${estimate:.{digits}f}, over --grok-max-cost ${limit:.12g}"
        )

    def reserve(self, request: ChatRequest) -> None:
        """An attempt admitted: its estimate counts against the budget until release()."""
        self._in_flight_usd += self.estimate(request) or 0.0

    def release(self, request: ChatRequest) -> None:
        """An admitted attempt ended; what it cost or may have cost is booked on its own."""
        self._in_flight_usd = max(0.0, self._in_flight_usd - (self.estimate(request) or 0.0))

    def sent(self) -> None:
        """One attempt has gone out."""
        self.spending.attempts += 1

    def lost(self, request: ChatRequest) -> None:
        """An attempt sent that brought no usable response, and may have been billed."""
        self.spending.lost += 1
        self.unsettled(request)

    def unsettled(self, request: ChatRequest) -> None:
        """An attempt that may have been billed, though no cost came back."""
        s = self.spending
        s.unsettled += 1
        estimate = self.estimate(request)
        if estimate is None:
            s.unpriced += 1
        else:
            s.possible_cost_usd += estimate

    def received(self, request: ChatRequest, completion: Completion) -> None:
        """A response arrived: its tokens and cost (US dollars) are added, or counted as unknown."""
        s = self.spending
        if completion.usage is None:
            s.no_usage += 1
        else:
            s.prompt_tokens += completion.usage.prompt_tokens
            s.output_tokens += completion.usage.output_tokens
        if completion.cost_usd is None:
            self.unsettled(request)
        else:
            s.costed += 1
            s.cost_usd += completion.cost_usd


def unpriced_refusal(unpriced: Sequence[str], prices: Prices | None) -> str:
    """Why --grok-max-cost refuses to start: models without a price, a typo's likely fix first.

    The budget is checked before the model catalog, whose "did you mean" would come too late.
    """
    names = ", ".join(repr(m) for m in unpriced)
    known = sorted({*PRICES, *(prices or {})})
    if len(unpriced) == 1:
        hints = did_you_mean(unpriced[0], known)
    else:
        hints = "".join(did_you_mean(m, known).replace(";", f"; for {m!r},", 1) for m in unpriced)
    return (
        f"--grok-max-cost needs a price for every model, and {names} "
        f"{'has' if len(unpriced) == 1 else 'have'} none (built-in prices as of "
        f"{PRICES_AS_OF}){hints}; nothing was sent. If the name is right, add it to the ini "
        f"option grok_prices, e.g. grok_prices = {unpriced[0]}: 2.00 0.50 6.00"
    )


def over_estimate_refusal(count: int, estimate: float, limit: float) -> str:
    """Why --grok-max-cost refuses to start: the upper estimate of `count` requests is over it."""
    return (
        f"the estimated cost of {count} requests is ${estimate:.{_digits(estimate, limit)}f}, "
        f"over --grok-max-cost ${limit:.12g}; nothing was sent. "
        "Raise the limit, lower max_tokens, or select fewer cases (-k)"
    )


def _digits(total: float, limit: float) -> int:
    """Decimals enough for a figure over `limit` to show as over it: 6 at least, up to 12."""
    for digits in range(6, 12):
        if round(total, digits) > round(limit, digits):
            return digits
    return 12
