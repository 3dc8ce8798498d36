"""Rate budgets: sliding windows for --grok-rpm / --grok-tpm, and request size estimates."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.pricing import estimate_cost

DEFAULT_MAX_TOKENS_ESTIMATE = 1024
# The server sees a request some milliseconds after we stamp it, and the lag varies with the
# network and the client's load; without this slack a window closed for us can be open for it.
WINDOW_MARGIN = 0.04
# Settled token counts are floats; a sum that is over the limit by less than this is not.
_ROUNDING = 1e-9


@dataclass
class Use:
    """One reservation in a window; its amount is corrected once the real figure is known."""

    stamp: float
    amount: float


class SlidingWindow:
    """At most `limit` units in any `seconds`: xAI enforces its budgets per second."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds + WINDOW_MARGIN
        self._uses: list[Use] = []

    def _end(self, use: Use) -> float:
        # An amount over the whole limit holds the window for its share of the time: it can go
        # at all, and the average rate still holds.
        return use.stamp + self.seconds * max(1.0, use.amount / self.limit)

    def delay(self, amount: float, now: float) -> float:
        """Seconds from `now` until `amount` fits; 0 when it fits now."""
        self._uses = [use for use in self._uses if self._end(use) > now]
        # An amount over the limit waits for an empty window.
        excess = sum(use.amount for use in self._uses) + min(amount, self.limit) - self.limit
        wait = 0.0
        for use in sorted(self._uses, key=self._end):
            if excess <= _ROUNDING:
                break
            excess -= use.amount
            wait = self._end(use) - now
        return wait

    def reserve(self, amount: float, now: float) -> Use:
        """Count `amount` from `now`; call only when delay() said it fits."""
        use = Use(now, amount)
        self._uses.append(use)
        return use

    def settle(self, use: Use, actual: float, now: float) -> None:
        """Replace a reservation's estimate with what was really used."""
        if self._end(use) > now:
            use.amount = actual
        elif actual > use.amount:
            # The window of the estimate has passed: the shortfall counts from now.
            self._uses.append(Use(now, actual - use.amount))


def rpm_window(rpm: int) -> SlidingWindow:
    """rpm/60 requests a second; below 60 rpm, one request per 60/rpm seconds."""
    per_window = max(1, rpm // 60)
    return SlidingWindow(per_window, per_window * 60 / rpm)


def _prompt_chars(request: ChatRequest) -> int:
    return sum(len(str(m.get("content", ""))) for m in request.messages)


def _max_tokens(request: ChatRequest) -> int:
    value = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    return int(value or DEFAULT_MAX_TOKENS_ESTIMATE)


def estimate_tokens(request: ChatRequest) -> int:
    """Prompt characters over four plus the output cap: what a reservation holds."""
    return _prompt_chars(request) // 4 + _max_tokens(request)


def estimate_request_cost(request: ChatRequest) -> float:
    """An upper bound of what one request costs, from its size and output cap."""
    return estimate_cost(request.model, _prompt_chars(request), _max_tokens(request))
