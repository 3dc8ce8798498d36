"""Rate budgets: sliding windows for --grok-rpm / --grok-tpm, limits learned from the API, and
request size estimates.

xAI states an account's limit in the text of a rate-limit 429 ("Requests per Second
(actual/limit): 2/2", research notes §1.6) and reports what is left on every success
(``x-ratelimit-remaining-{requests,tokens}``, with no reset time). `Pacer` uses both: the
stated limit becomes a window for the rest of the run, and until one is known the remaining
counts hold sending back before the limit is hit.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
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

    def __init__(self, limit: float, seconds: float, margin: float | None = None) -> None:
        self.limit = limit
        self.seconds = seconds + (WINDOW_MARGIN if margin is None else margin)
        self.rate = limit / seconds  # units per second, without the margin
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


# "Requests per Second (actual/limit): 2/2", "Tokens per Minute (actual/limit): 10/5".
_STATED = re.compile(
    r"(Requests|Tokens) per (Second|Minute) \(actual/limit\):\s*\d+\s*/\s*(\d+)", re.IGNORECASE
)
# A learned per-second limit of N is kept as one request per (1 + this) / N seconds: evenly
# spaced, because requests let go in a burst reach the server spread out by the client's own
# sending time, and the next burst's first ones then overtake the last ones of the window.
LEARNED_SLACK = 0.05
# With no answer in flight and nothing left to send on, one request goes after this long to
# find out whether the budget is back; xAI's windows are a second or a minute long.
PROBE_INTERVAL = 0.1
# The first request goes alone until its answer or this long: its headers may say how little
# room there is, but a reasoning model's answer can take a minute, and the run must not.
SLOW_START_CAP = 0.5
# Send stamps kept to seed a learned window with what the server has already counted.
_HISTORY_SECONDS = 61.0


@dataclass(frozen=True)
class StatedLimit:
    """A limit read from a 429's text: `limit` requests or tokens per second or minute."""

    unit: str  # "requests" | "tokens"
    per: str  # "second" | "minute"
    limit: int

    def describe(self) -> str:
        """How the progress line and the summary say it: '5 requests/s from the API'."""
        return f"{self.limit:,} {self.unit}/{'s' if self.per == 'second' else 'min'} from the API"

    def window(self) -> SlidingWindow:
        """The limit at the per-second grain, as xAI enforces it."""
        if self.unit == "requests" and self.per == "minute":
            return rpm_window(self.limit)
        if self.unit == "requests":
            return SlidingWindow(1, 1 / self.limit, margin=LEARNED_SLACK / self.limit)
        per_second = self.limit if self.per == "second" else self.limit / 60
        return SlidingWindow(per_second, 1.0)


def stated_limit(message: str) -> StatedLimit | None:
    """The limit a rate-limit message states, or None when it states none."""
    match = _STATED.search(message)
    if match is None or int(match.group(3)) < 1:
        return None
    return StatedLimit(match.group(1).lower(), match.group(2).lower(), int(match.group(3)))


class Pacer:
    """When the next request may go: configured and learned windows, and the API's headers.

    Until the first answer comes back only one request is out, since its headers may say
    how little room there is. The headers then hold sending back while the requests already
    out could use what remains; a window (configured or learned) replaces them for its unit.
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.requests = rpm_window(rpm) if rpm else None
        self.tokens = SlidingWindow(tpm / 60, 1.0) if tpm else None
        self.learned: list[StatedLimit] = []
        self._sent: deque[tuple[float, float]] = deque()  # (stamp, tokens) of recent sends
        self._heard = False
        self._out = 0
        self._out_tokens = 0.0
        self._left_requests: float | None = None
        self._left_tokens: float | None = None
        self._last_answer = 0.0
        self._first_sent = 0.0
        self._spaced = False  # the request window is a learned, evenly spaced one

    def delay(self, tokens: float, now: float) -> float | None:
        """Seconds until a request of `tokens` may go (0: now); None: when an answer comes."""
        if not self._heard and self._out and now < self._first_sent + SLOW_START_CAP:
            return self._first_sent + SLOW_START_CAP - now
        short = (self.requests is None and self._left_requests is not None
                 and self._left_requests < 1) or (
            self.tokens is None and self._left_tokens is not None and tokens > self._left_tokens
        )
        if short:
            if self._out:
                return None
            # Nothing out whose answer would tell more: probe once the window may have moved.
            return max(0.0, self._last_answer + PROBE_INTERVAL - now)
        return max(
            self.requests.delay(1, now) if self.requests else 0.0,
            self.tokens.delay(tokens, now) if self.tokens else 0.0,
        )

    def reserve(self, tokens: float, now: float) -> tuple[Use | None, Use | None]:
        """Count a request going out now: its (request, token) uses, to finish when answered."""
        if not self._sent:
            self._first_sent = now
        self._out += 1
        self._out_tokens += tokens
        if self._left_requests is not None:
            self._left_requests -= 1
        if self._left_tokens is not None:
            self._left_tokens -= tokens
        self._sent.append((now, tokens))
        while self._sent and self._sent[0][0] < now - _HISTORY_SECONDS:
            self._sent.popleft()
        # A learned window is evenly spaced and stamps at admission: held until the answer, as
        # configured windows are, each request would wait for the one before it to return.
        return (
            self.requests.reserve(1, now, in_flight=not self._spaced) if self.requests else None,
            self.tokens.reserve(tokens, now, in_flight=True) if self.tokens else None,
        )

    def answered(
        self,
        tokens: float,
        headers: Mapping[str, str] | None,
        now: float,
        use: Use | None = None,
        token_use: Use | None = None,
    ) -> None:
        """An attempt ended (answered, refused or failed): finish its uses, read its headers."""
        # A window learned since the request went out has its own record of it: finishing the
        # use of the old one is then harmless.
        if use is not None and use.in_flight and self.requests is not None:
            self.requests.finish(use, now)
        if token_use is not None and token_use.in_flight and self.tokens is not None:
            self.tokens.finish(token_use, now)
        self._heard = True
        self._out -= 1
        self._out_tokens -= tokens
        self._last_answer = now
        if not headers:
            return
        # What the requests still out will take is not in the figure yet.
        if (left := _header_int(headers, "x-ratelimit-remaining-requests")) is not None:
            self._left_requests = left - self._out
        if (left := _header_int(headers, "x-ratelimit-remaining-tokens")) is not None:
            self._left_tokens = left - self._out_tokens

    def learn(self, message: str, now: float) -> StatedLimit | None:
        """Adopt the limit a 429 states when it is tighter than what is known; return it then."""
        stated = stated_limit(message)
        if stated is None:
            return None
        window = stated.window()
        current = self.requests if stated.unit == "requests" else self.tokens
        if current is not None and current.rate <= window.rate:
            return None
        if stated.unit == "requests":
            # The server's window still holds what went out lately: the next request waits
            # until the limit-th latest of those has left it.
            span = (1.0 if stated.per == "second" else 60.0) * (1 + LEARNED_SLACK)
            recent = sorted(stamp for stamp, _ in self._sent if stamp > now - span)
            if len(recent) >= stated.limit:
                window.reserve(window.limit, recent[-stated.limit] + span - window.seconds)
            self.requests = window
            self._spaced = stated.per == "second"
        else:
            for stamp, tokens in self._sent:
                if stamp > now - window.seconds:
                    window.reserve(tokens, stamp)
            self.tokens = window
        self.learned = [known for known in self.learned if known.unit != stated.unit]
        self.learned.append(stated)
        return stated


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None
