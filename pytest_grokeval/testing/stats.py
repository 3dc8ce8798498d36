"""The fake's counters and request log, which test threads read while the server writes them.

One condition guards everything, so that waiters block on it instead of polling.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .request import LoggedRequest


class Ledger:
    """Model requests counted on arrival and logged when settled; thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._count = 0
        self._in_flight = 0
        self._peak = 0
        self._log: list[LoggedRequest] = []
        self._paths: Counter[str] = Counter()
        self._models_requests = 0
        self._rate_limited = 0

    def arrive(self, path: str) -> int:
        """Count a model request as received and in flight; return its index."""
        with self._changed:
            index = self._count
            self._count += 1
            self._paths[path] += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            self._changed.notify_all()
            return index

    def settle(self, entry: LoggedRequest) -> None:
        """Take a request out of flight and log it."""
        with self._changed:
            self._in_flight -= 1
            self._log.append(entry)
            self._changed.notify_all()

    def count_models_request(self, path: str) -> None:
        """Count one ``GET /v1/models``."""
        with self._changed:
            self._models_requests += 1
            self._paths[path] += 1

    def count_rate_limited(self) -> None:
        """Count one 429 sent because a hidden limit was reached."""
        with self._changed:
            self._rate_limited += 1

    def reset(self) -> None:
        """Forget the log and the counters; requests still in flight stay counted as such."""
        with self._changed:
            self._count = 0
            self._peak = self._in_flight
            self._log.clear()
            self._paths.clear()
            self._models_requests = 0
            self._rate_limited = 0
            self._changed.notify_all()

    @property
    def request_count(self) -> int:
        """Model requests (chat and Responses) received, faulted or not."""
        with self._changed:
            return self._count

    @property
    def in_flight(self) -> int:
        """Model requests read but not yet answered, dropped or abandoned."""
        with self._changed:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most model requests that were in flight at once."""
        with self._changed:
            return self._peak

    @property
    def models_requests(self) -> int:
        """``GET /v1/models`` requests received."""
        with self._changed:
            return self._models_requests

    @property
    def rate_limited(self) -> int:
        """429s sent because a hidden rate limit was reached."""
        with self._changed:
            return self._rate_limited

    def requests_to(self, path: str) -> int:
        """Requests received on `path`, e.g. ``/v1/responses`` or ``/v1/models``."""
        with self._changed:
            return self._paths[path]

    @property
    def log(self) -> list[LoggedRequest]:
        """The requests the server has finished with, in arrival order."""
        with self._changed:
            return sorted(self._log, key=lambda entry: entry.index)

    def snapshot(self) -> dict[str, Any]:
        """The ``/_fake/stats`` body."""
        with self._changed:
            return {
                "requests": self._count,
                "peak_in_flight": self._peak,
                "in_flight": self._in_flight,
                "models_requests": self._models_requests,
                "rate_limited": self._rate_limited,
                "by_path": dict(self._paths),
            }

    def wait_for_requests(self, n: int, timeout: float) -> None:
        """Block until `n` model requests have arrived; TimeoutError after `timeout` s."""
        what = f"{n} request{'' if n == 1 else 's'} to arrive"
        self._wait(lambda: self._count >= n, timeout, what)

    def wait_for_idle(self, timeout: float) -> None:
        """Block until no model request is in flight; TimeoutError after `timeout` s."""
        self._wait(lambda: self._in_flight == 0, timeout, "no request in flight")

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"waited {timeout}s for {what}; requests={self._count}, "
                    f"in_flight={self._in_flight}"
                )
