"""Sorting API errors: fatal for the run, worth retrying, or a failure of one request's items."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_grokeval.data import FetchError

if TYPE_CHECKING:
    import openai

# The SDK's own cap: a longer retry-after means "not soon", and backoff is used instead.
RETRY_AFTER_CAP = 120.0


class FatalAPIError(Exception):
    """An error no retry can fix (bad key, no credits, unknown model): the whole run stops."""

    def __init__(self, error: FetchError, advice: str) -> None:
        super().__init__(f"{error.message} ({advice}; the prefetch stopped)")
        self.error = error


class RetryableError(Exception):
    """Worth sending again: after `retry_after` seconds if the API said, else after backoff."""

    def __init__(
        self, error: FetchError, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class ItemError(Exception):
    """Fails the items of one request, and only those."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


# xAI answers both "slow down" and "out of money" with 429; only the message tells them apart.
_NO_CREDITS = re.compile(r"credits|spending limit|billing|quota", re.IGNORECASE)
# xAI answers a bad key with 400 "Incorrect API key provided", not 401.
_BAD_KEY = re.compile(r"api key|unauthori[sz]ed|authentication", re.IGNORECASE)


def api_message(exc: openai.APIStatusError) -> str:
    """The human message of an API error, from xAI's flat body or OpenAI's nested one."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    if isinstance(body, str) and body:
        return body
    return exc.message


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds <= RETRY_AFTER_CAP:
            return seconds
    return None


def classify(exc: openai.APIStatusError) -> FatalAPIError | RetryableError | ItemError:
    """Map an API status error to fatal (stop the run), retryable, or a failure of its items."""
    status = exc.status_code
    message = api_message(exc)
    error = FetchError(f"HTTP {status}: {message}", status, "api")
    if status in (401, 403) or (status == 400 and _BAD_KEY.search(message)):
        return FatalAPIError(error, "the API refused the key; check it")
    # Every other request of the run would get the same answer: a wrong model or base URL.
    if status == 404:
        return FatalAPIError(error, "check the model name and --grok-base-url")
    if status == 429 and _NO_CREDITS.search(message):
        return FatalAPIError(error, "add credits or raise the spending limit at console.x.ai")
    if status == 429:
        return RetryableError(error, _retry_after(exc), rate_limited=True)
    if status >= 500 or status in (408, 409):
        return RetryableError(error, _retry_after(exc))
    return ItemError(error)
