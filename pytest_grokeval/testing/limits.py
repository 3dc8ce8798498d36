"""Hidden rate limits: xAI's per-second and per-minute request windows, and tokens per minute.

Windows slide: a request is over a limit when the requests accepted in the last 1 s (or 60 s)
already reach it. Only accepted requests fill a window, at their arrival time, so a client
that keeps to the limit is never refused.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the window's name and its actual/limit figures."""

    window: str
    actual: int
    limit: int

    def message(self, model: str) -> str:
        """xAI's 429 text for this refusal."""
        return (
            f"Too many requests for team fake-team and model {model}. Your team's rate limit is "
            f"— {self.window} (actual/limit): {self.actual}/{self.limit}. "
            "Please slow down or contact support to raise it."
        )


class RateLimits:
    """Sliding windows over accepted requests and the tokens they used; thread-safe."""

    def __init__(
        self,
        requests_per_second: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_second", requests_per_second),
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name}={value!r} must be at least 1")
        self.requests_per_second = requests_per_second
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._second: deque[float] = deque()
        self._minute: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()

    def admit(self) -> Refusal | None:
        """Count a request arriving now, or say which limit refuses it (then it counts not)."""
        if self.requests_per_second is self.requests_per_minute is self.tokens_per_minute is None:
            return None
        with self._lock:
            now = self._clock()
            self._expire(now)
            windows = (
                ("Requests per Second", len(self._second), self.requests_per_second),
                ("Requests per Minute", len(self._minute), self.requests_per_minute),
                ("Tokens per Minute", self._used(), self.tokens_per_minute),
            )
            for window, used, limit in windows:
                if limit is not None and used >= limit:
                    actual = used if window.startswith("Tokens") else used + 1
                    return Refusal(window, actual, limit)
            self._second.append(now)
            self._minute.append(now)
            return None

    def spend(self, tokens: int) -> None:
        """Count tokens an answer used toward the per-minute token window."""
        if self.tokens_per_minute is not None and tokens > 0:
            with self._lock:
                self._tokens.append((self._clock(), tokens))

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of a successful answer; none without limits."""
        headers: dict[str, str] = {}
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self.requests_per_minute is not None:
                limit, used = self.requests_per_minute, len(self._minute)
            elif self.requests_per_second is not None:
                limit, used = self.requests_per_second, len(self._second)
            else:
                limit = used = 0
            if limit:
                headers["x-ratelimit-limit-requests"] = str(limit)
                headers["x-ratelimit-remaining-requests"] = str(max(0, limit - used))
            if self.tokens_per_minute is not None:
                remaining = max(0, self.tokens_per_minute - self._used())
                headers["x-ratelimit-limit-tokens"] = str(self.tokens_per_minute)
                headers["x-ratelimit-remaining-tokens"] = str(remaining)
        return headers

    def reset(self) -> None:
        """Empty every window."""
        with self._lock:
            self._second.clear()
            self._minute.clear()
            self._tokens.clear()

    def _expire(self, now: float) -> None:
        for window, seconds in ((self._second, 1.0), (self._minute, 60.0)):
            while window and window[0] <= now - seconds:
                window.popleft()
        while self._tokens and self._tokens[0][0] <= now - 60.0:
            self._tokens.popleft()

    def _used(self) -> int:
        return sum(tokens for _, tokens in self._tokens)
