"""What comes back on the wire: a completion's JSON body read into a Completion."""

from __future__ import annotations

from typing import Any

from pytest_grokeval.data import Completion, Usage
from pytest_grokeval.engine.pricing import Prices, cost_from_usage


def parse_completion(data: Any, latency_ms: float, prices: Prices | None = None) -> Completion:
    """Read a chat completion's JSON body; raise ValueError when it is not one.

    An error object in a 200 body raises ValueError with the server's message.
    """
    if not isinstance(data, dict):
        raise ValueError(f"the response is not a JSON object: {str(data)[:200]!r}")
    if "choices" not in data and ("error" in data or "detail" in data):
        raise ValueError(f"the API answered 200 with an error: {body_message(data)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    text = (message.get("content") if isinstance(message, dict) else None) or ""
    usage_data = data.get("usage")
    raw: dict[str, Any] = usage_data if isinstance(usage_data, dict) else {}
    usage = parse_usage(raw)
    # xAI's exact billed cost; absent elsewhere, and then the price table estimates it.
    ticks = _count(raw.get("cost_in_usd_ticks"))
    model = str(data.get("model") or "")
    return Completion(
        text=str(text),
        finish_reason=choice.get("finish_reason"),
        model=model,
        usage=usage,
        latency_ms=latency_ms,
        cost_usd=cost_from_usage(model, usage, ticks, prices),
    )


def parse_usage(raw: dict[str, Any]) -> Usage | None:
    """Chat usage, or None when a main count is missing or not a count (negative, NaN, text)."""
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    total = raw.get("total_tokens")
    if total is not None and _count(total) is None:
        return None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_count(total) or prompt + completion,
        reasoning_tokens=_count(_get(raw, "completion_tokens_details", "reasoning_tokens")) or 0,
        cached_tokens=_count(_get(raw, "prompt_tokens_details", "cached_tokens")) or 0,
    )


def body_message(body: Any) -> str:
    """The human message of an error body: xAI's flat one, OpenAI's nested one, or {"detail"}."""
    if isinstance(body, dict):
        if "detail" in body and "error" not in body:
            return _detail(body["detail"])
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    return str(body)


def _detail(detail: Any) -> str:
    # FastAPI-style gateways: a string, or a list of {"msg": ...} validation errors.
    if isinstance(detail, list):
        return "; ".join(
            str(part.get("msg", part)) if isinstance(part, dict) else str(part) for part in detail
        )
    return str(detail)


def _get(data: dict[str, Any], outer: str, inner: str) -> Any:
    nested = data.get(outer)
    return nested.get(inner) if isinstance(nested, dict) else None


def _count(value: Any) -> int | None:
    """A token or tick count: a non-negative int (bools, floats, NaN and text are not)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
