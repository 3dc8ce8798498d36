"""What comes back on the wire: a completion's JSON body read into a Completion."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pytest_grokeval.data import Completion, ToolCall, Usage
from pytest_grokeval.engine.pricing import cost_from_usage


def parse_completion(data: Any, latency_ms: float) -> Completion:
    """Read a chat completion's JSON body; raise ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"the response is not a JSON object: {str(data)[:200]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    text = message.get("content") or ""
    refusal = message.get("refusal")
    usage_data = data.get("usage")
    raw: dict[str, Any] = usage_data if isinstance(usage_data, dict) else {}
    usage = Usage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        reasoning_tokens=_int(_get(raw, "completion_tokens_details", "reasoning_tokens")),
        cached_tokens=_int(_get(raw, "prompt_tokens_details", "cached_tokens")),
    )
    # xAI's exact billed cost; absent elsewhere, and then the price table estimates it.
    ticks = raw.get("cost_in_usd_ticks")
    model = str(data.get("model") or "")
    return Completion(
        text=str(text),
        finish_reason=choice.get("finish_reason"),
        model=model,
        usage=usage,
        latency_ms=latency_ms,
        cost_usd=cost_from_usage(model, usage, ticks if isinstance(ticks, int) else None),
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        tool_calls=_tool_calls(message.get("tool_calls")),
    )


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """OpenAI's ``[{type: function, function: {name, arguments: "<json>"}}]``, decoded."""
    if not isinstance(raw, list):
        return ()
    calls = []
    for entry in raw:
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            # Text that is not JSON is kept as written: a check on it then fails, showing it.
            with contextlib.suppress(ValueError):
                arguments = json.loads(arguments)
        calls.append(ToolCall(name=str(function.get("name") or ""), arguments=arguments))
    return tuple(calls)


def _get(data: dict[str, Any], outer: str, inner: str) -> Any:
    nested = data.get(outer)
    return nested.get(inner) if isinstance(nested, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
