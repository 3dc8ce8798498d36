"""Parsing one option value (CLI, ini or environment text) into its typed value.

Each parser raises ValueError whose message starts with "must", naming what was wrong; the
caller adds which option or ini key the text came from.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

import pytest

from pytest_grokeval.engine.pricing import Price

DEFAULT_BASE_URL = "https://api.x.ai/v1"


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


def count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ValueError(f"must be zero or a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise ValueError(f"must be a positive finite number, got {value:g}")
    return value


def text(text: str) -> str:
    # An empty value is a template left unfilled: a model '' would go out in every request.
    if not text.strip():
        raise ValueError(f"must not be empty, got {text!r}; leave it out for the default")
    return text


def delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise ValueError(f"must be zero or a positive finite number, got {value:g}")
    return value


_TRUTH = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}


def boolean(text: str) -> bool:
    """true/false, yes/no, on/off or 1/0, in any case, as pytest's own bool ini keys read."""
    try:
        return _TRUTH[text.strip().lower()]
    except KeyError:
        raise ValueError(f"must be true or false, got {text!r}") from None


def _redact(url: str) -> str:
    # A base URL may carry credentials (https://user:secret@proxy/v1); they never reach output.
    # Up to the last '@': a password with an unescaped '/' or '#' is still hidden.
    return re.sub(r"(?<=//).*@", "***@", url, flags=re.DOTALL)


def base_url(text: str) -> str:
    """An http(s) URL with a host and no credentials, without its trailing '/'.

    Raises ValueError whose message never shows credentials found in `text`."""
    example = f"an http:// or https:// URL such as {DEFAULT_BASE_URL}"
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018  (parses the port: a bad one raises ValueError here)
    except ValueError as exc:
        # urllib's reason may quote a piece of a password ("Port could not be cast ... 'pw'").
        why = "" if "@" in text else f" ({exc})"
        raise ValueError(f"must be {example}, got {_redact(text)!r}{why}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be {example}, got {_redact(text)!r}")
    if "@" in parts.netloc:
        # The SDK's aiohttp transport refuses them next to its Authorization header, per request.
        raise ValueError(
            f"must not hold credentials, got {_redact(text)!r}; the API key is read from "
            "the environment (XAI_API_KEY), a proxy's from HTTPS_PROXY"
        )
    return text.strip().rstrip("/")


def parse_prices(lines: list[str]) -> dict[str, Price]:
    """The ini option grok_prices: 'MODEL: INPUT CACHED_INPUT OUTPUT' lines, USD per 1M tokens.

    Raises pytest.UsageError naming the line that is not of that form, or that prices a model
    an earlier line priced (which of two prices is meant cannot be guessed).
    """
    prices: dict[str, Price] = {}
    lines_of: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        model, colon, rest = line.partition(":")
        try:
            values = [float(part) for part in rest.split()]
        except ValueError:
            values = []
        if not (colon and model.strip() and len(values) == 3):
            values = []
        if not values or not all(0 <= v < math.inf for v in values):
            raise pytest.UsageError(
                f"grok_prices line {number}: expected 'MODEL: INPUT CACHED_INPUT OUTPUT' "
                f"(USD per million tokens, e.g. 'grok-4.8: 2.00 0.50 6.00'), got {line!r}"
            )
        name = model.strip()
        if name in lines_of:
            raise pytest.UsageError(
                f"grok_prices line {number}: {name!r} is priced twice (first on line "
                f"{lines_of[name]}); keep one line per model"
            )
        lines_of[name] = number
        prices[name] = Price(*values)
    return prices
