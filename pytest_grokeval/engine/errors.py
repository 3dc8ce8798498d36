"""Sorting API errors: fatal for the run, worth retrying, or a failure of one request's items."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_grokeval.data import FetchError
from pytest_grokeval.engine.wire import body_message

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


# Out of money is a 403 in 2026 and a 429 before (shared/research/xai-api-2026.md §1.7), and a
# 429 also means "slow down": only the text tells them apart, so both patterns read it.
_NO_CREDITS = re.compile(r"credits|spending limit|billing|purchase|payment", re.IGNORECASE)
_NO_LICENSE = re.compile(r"licen[cs]e", re.IGNORECASE)
_RATE_LIMIT = re.compile(
    r"(requests?|tokens?) per (second|minute|hour)|per[- ](second|minute)|rate limit|"
    r"at capacity|too many requests",
    re.IGNORECASE,
)
# xAI answers a bad key with 400 "Incorrect API key provided", not 401.
_BAD_KEY = re.compile(r"api key|unauthori[sz]ed|unauthenticated|authentication", re.IGNORECASE)


def api_message(exc: openai.APIStatusError) -> str:
    """The human message of an API error: xAI's flat body, OpenAI's nested one, or {detail}."""
    body = exc.body
    if isinstance(body, dict):
        return body_message(body)
    if isinstance(body, str) and body:
        return body
    return exc.message


def _code(exc: openai.APIStatusError) -> str:
    body = exc.body
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else ""


def transport_error(exc: BaseException) -> tuple[str, bool] | None:
    """What a transport failure was: ("connection failed: <cause>", sent) or None for a timeout.

    `sent` says the request may have reached the server (a reset or a drop after sending) and
    been billed; a refused connection, a DNS or a TLS failure never got that far.
    """
    import aiohttp

    causes = []
    seen: BaseException | None = exc
    while seen is not None and seen not in causes:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in causes:
        if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
            if isinstance(cause, aiohttp.ConnectionTimeoutError):
                return f"connection failed: {_describe(cause)}", False
            return None
        if isinstance(cause, aiohttp.ClientConnectorError):
            return f"connection failed: {_describe(cause)}", False
        if isinstance(cause, aiohttp.ClientConnectionError | OSError):
            return f"connection failed: {_describe(cause)}", True
    # Other transports name the cause in the chain too; without one, say what the SDK said.
    for cause in causes[1:]:
        if type(cause).__name__.endswith("Timeout"):
            return None
    last = causes[-1]
    return f"connection failed: {_describe(last)}", True


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
    code = _code(exc)
    error = FetchError(f"HTTP {status}: {message}", status, "api")
    rate_limited = status == 429 and bool(_RATE_LIMIT.search(message))
    if status in (402, 403, 429) and not rate_limited and _NO_CREDITS.search(message):
        return FatalAPIError(error, "add credits or raise the spending limit at console.x.ai")
    if status in (402, 403, 429) and not rate_limited and _NO_LICENSE.search(message):
        return FatalAPIError(error, "the team has no license for this; see console.x.ai")
    # A 403 is also xAI's answer to a prompt its safety checks refuse ("Content violates usage
    # guidelines"): only one about the key stops the run, the others fail their own items.
    if status == 401 or (status in (400, 403) and _BAD_KEY.search(f"{code} {message}")):
        return FatalAPIError(error, "the API refused the key; check it")
    # Every other request of the run would get the same answer: a wrong model or base URL.
    if status == 404:
        return FatalAPIError(error, "check the model name and --grok-base-url")
    if status == 429:
        return RetryableError(error, _retry_after(exc), rate_limited=True)
    if status >= 500 or status in (408, 409):
        return RetryableError(error, _retry_after(exc))
    return ItemError(error)
