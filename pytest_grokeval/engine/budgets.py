"""Rate budgets: sliding windows for --grok-rpm / --grok-tpm, and request size estimates."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_grokeval.data import ChatRequest
from pytest_grokeval.engine.pricing import Prices, estimate_cost

DEFAULT_MAX_TOKENS_ESTIMATE = 1024
# A window's slack on top of its length, for the server's own clock and window edges.
WINDOW_MARGIN = 0.04
# How long after its admission a request in flight is assumed to have reached the server when
# no answer has told us so yet: the bound on the client's own lag (event loop, connection) that
# the windows' guarantee rests on. Holding a use until its answer instead would be exact, but
# would let only `limit` requests be in flight at once: with answers that take a minute, as
# reasoning models' do, --grok-rpm 600 would send 10 a minute.
SEND_LAG_CAP = 0.5
# Settled token counts are floats; a sum that is over the limit by less than this is not.
_ROUNDING = 1e-9


@dataclass
class Use:
    """One reservation in a window; its amount is corrected once the real figure is known."""

    stamp: float
    amount: float
    in_flight: bool = False


class SlidingWindow:
    """At most `limit` units in any `seconds`: xAI enforces its budgets per second."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds + WINDOW_MARGIN
        self._uses: list[Use] = []

    def _end(self, use: Use, now: float) -> float:
        # A use in flight may not have reached the server yet: it counts as if sent now, up to
        # SEND_LAG_CAP after its admission.
        stamp = _arrival_bound(use, now) if use.in_flight else use.stamp
        # An amount over the whole limit holds the window for its share of the time: it can go
        # at all, and the average rate still holds.
        return stamp + self.seconds * max(1.0, use.amount / self.limit)

    def delay(self, amount: float, now: float) -> float:
        """Seconds from `now` until `amount` fits; 0 when it fits now.

        A use still in flight is always in the way: the wait then is a whole window, and ends
        early when its `finish()` makes room (the engine waits on that signal too).
        """
        self._uses = [use for use in self._uses if self._end(use, now) > now]
        # An amount over the limit waits for an empty window.
        excess = sum(use.amount for use in self._uses) + min(amount, self.limit) - self.limit
        wait = 0.0
        for use in sorted(self._uses, key=lambda use: self._end(use, now)):
            if excess <= _ROUNDING:
                break
            excess -= use.amount
            wait = self._end(use, now) - now
        return wait

    def reserve(self, amount: float, now: float, *, in_flight: bool = False) -> Use:
        """Count `amount` from `now`, or until finish() when `in_flight`; only when it fits."""
        use = Use(now, amount, in_flight)
        self._uses.append(use)
        return use

    def finish(self, use: Use, now: float) -> None:
        """The request of an in-flight use was answered or failed at `now`: count it from then.

        The server saw the request at some moment between its admission and its answer, and no
        later than SEND_LAG_CAP after its admission. Stamping at the earlier of those two bounds
        means that the server never sees more than the limit in a window as long as the client
        puts an admitted request on the wire within SEND_LAG_CAP (a loaded machine, a busy event
        loop); a stamp at admission alone fails as soon as that lag varies by more than
        WINDOW_MARGIN. The price: a use holds the window for up to SEND_LAG_CAP longer.
        """
        use.stamp = _arrival_bound(use, now)
        use.in_flight = False

    def settle(self, use: Use, actual: float, now: float) -> None:
        """Replace a reservation's estimate with what was really used."""
        if self._end(use, now) > now:
            use.amount = actual
        elif actual > use.amount:
            # The window of the estimate has passed: the shortfall counts from now.
            self._uses.append(Use(now, actual - use.amount))


def _arrival_bound(use: Use, now: float) -> float:
    """The latest moment the server can have seen a use's request, as known at `now`."""
    return min(max(use.stamp, now), use.stamp + SEND_LAG_CAP)


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


def estimate_request_cost(request: ChatRequest, prices: Prices | None = None) -> float | None:
    """An upper bound of what one request costs, from its size and output cap; None unpriced."""
    return estimate_cost(request.model, _prompt_chars(request), _max_tokens(request), prices)
