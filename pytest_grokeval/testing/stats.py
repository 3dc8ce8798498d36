"""The fake's counters and request log, which test threads read while the server writes them.

One condition guards everything, so that waiters block on it instead of polling.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal, Protocol, get_args, overload

from .request import LoggedRequest

# The ledger's counters, by the names the ``/_fake/stats`` body gives them.
CounterName = Literal["requests", "in_flight", "peak_in_flight", "models_requests", "rate_limited"]
COUNTERS: tuple[CounterName, ...] = get_args(CounterName)


class Ledger:
    """Model requests counted on arrival and logged when settled; thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._counts: dict[CounterName, int] = dict.fromkeys(COUNTERS, 0)
        self._log: list[LoggedRequest] = []
        self._paths: Counter[str] = Counter()

    def arrive(self, path: str) -> int:
        """Count a model request as received and in flight; return its index."""
        with self._changed:
            counts = self._counts
            index = counts["requests"]
            counts["requests"] += 1
            self._paths[path] += 1
            counts["in_flight"] += 1
            counts["peak_in_flight"] = max(counts["peak_in_flight"], counts["in_flight"])
            self._changed.notify_all()
            return index

    def settle(self, entry: LoggedRequest) -> None:
        """Take a request out of flight and log it."""
        with self._changed:
            self._counts["in_flight"] -= 1
            self._log.append(entry)
            self._changed.notify_all()

    def count_models_request(self, path: str) -> None:
        """Count one ``GET /v1/models``."""
        with self._changed:
            self._counts["models_requests"] += 1
            self._paths[path] += 1

    def count_rate_limited(self) -> None:
        """Count one 429 sent because a hidden limit was reached."""
        with self._changed:
            self._counts["rate_limited"] += 1

    def reset(self) -> None:
        """Forget the log and the counters; requests still in flight stay counted as such."""
        with self._changed:
            in_flight = self._counts["in_flight"]
            self._counts = dict.fromkeys(COUNTERS, 0)
            self._counts["in_flight"] = self._counts["peak_in_flight"] = in_flight
            self._log.clear()
            self._paths.clear()
            self._changed.notify_all()

    def count(self, name: CounterName) -> int:
        """The counter `name` now."""
        with self._changed:
            return self._counts[name]

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
        """The ``/_fake/stats`` body: the `COUNTERS` and ``by_path`` (path -> requests)."""
        with self._changed:
            body: dict[str, Any] = dict(self._counts.items())
            body["by_path"] = dict(self._paths)
            return body

    def wait_for_requests(self, n: int, timeout: float) -> None:
        """Block until `n` model requests have arrived; TimeoutError after `timeout` s."""
        what = f"{n} request{'' if n == 1 else 's'} to arrive"
        self._wait(lambda: self._counts["requests"] >= n, timeout, what)

    def wait_for_idle(self, timeout: float) -> None:
        """Block until no model request is in flight; TimeoutError after `timeout` s."""
        self._wait(lambda: self._counts["in_flight"] == 0, timeout, "no request in flight")

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"waited {timeout}s for {what}; requests={self._counts['requests']}, "
                    f"in_flight={self._counts['in_flight']}"
                )


class _HasLedger(Protocol):
    ledger: Ledger


class Count:
    """A read-only ``int`` attribute of an object with a `ledger`: one of its counters.

    `doc`: the attribute's docstring; `name`: the counter read (default: the attribute's
    name, which must then be one of `COUNTERS`). One descriptor, so that each statistic
    `FakeGrok` shows is one line.
    """

    def __init__(self, doc: str, name: CounterName | None = None) -> None:
        self.__doc__ = doc
        self.counter = name
        self.attribute = ""

    def __set_name__(self, owner: type[Any], attribute: str) -> None:
        self.attribute = attribute
        if self.counter is None:
            if attribute not in COUNTERS:
                raise ValueError(f"no counter {attribute!r}; the ledger has {COUNTERS}")
            self.counter = COUNTERS[COUNTERS.index(attribute)]

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Count: ...

    @overload
    def __get__(self, instance: _HasLedger, owner: type[Any] | None = None) -> int: ...

    def __get__(self, instance: _HasLedger | None, owner: type[Any] | None = None) -> int | Count:
        if instance is None:
            return self
        assert self.counter is not None, "Count is used as a class attribute"
        return instance.ledger.count(self.counter)

    def __set__(self, instance: _HasLedger, value: int) -> None:
        # Read-only like a property: a stray assignment must not hide the live counter.
        raise AttributeError(f"{self.attribute} is read-only; reset() clears the counters")
