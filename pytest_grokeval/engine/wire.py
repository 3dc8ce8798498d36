"""The wire format per endpoint: the request body to send, and the JSON body read back.

Requests are written once, as for Chat Completions (`ChatRequest.params`); the Responses API
(``POST /v1/responses``) gets them mapped by its own names (research notes §1.3). Usage is read
by each endpoint's own rules (§1.8): chat's `completion_tokens` leaves reasoning out, Responses'
`output_tokens` holds it; both become the same `Usage`, whose completion excludes reasoning.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.data import ChatRequest, Completion, ToolCall, Usage
from pytest_grokeval.engine.pricing import Prices, cost_from_usage

PATHS = {"chat": "/chat/completions", "responses": "/responses"}
# Chat parameter -> Responses parameter, where only the name differs.
_RENAMED = {"max_tokens": "max_output_tokens", "max_completion_tokens": "max_output_tokens"}


def request_body(request: ChatRequest) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) for the request's endpoint."""
    if request.api == "responses":
        return PATHS["responses"], responses_body(request)
    return PATHS["chat"], request.create_kwargs()


def responses_body(request: ChatRequest) -> dict[str, Any]:
    """The Responses body: messages -> input, system -> instructions, params by their names.

    ``store`` is false unless the params set it: xAI keeps stored responses for 30 days, which
    a test run has no use for.
    """
    system = [str(m.get("content", "")) for m in request.messages if m.get("role") == "system"]
    body: dict[str, Any] = {
        "model": request.model,
        "input": [dict(m) for m in request.messages if m.get("role") != "system"],
        "store": False,
    }
    if system:
        body["instructions"] = "\n\n".join(system)
    for name, value in request.params.items():
        if name == "reasoning_effort":
            body["reasoning"] = {**body.get("reasoning", {}), "effort": value}
        elif name == "response_format":
            body["text"] = {"format": _flattened(value, "json_schema")}
        elif name == "tools" and isinstance(value, list):
            body["tools"] = [_flattened(tool, "function") for tool in value]
        else:
            body[_RENAMED.get(name, name)] = value
    return body


def _flattened(value: Any, kind: str) -> Any:
    """Chat's ``{type: kind, kind: {...}}`` is flat in Responses: ``{type: kind, ...}``.

    Used for ``response_format`` (kind json_schema) and each of ``tools`` (kind function).
    """
    if isinstance(value, dict) and value.get("type") == kind:
        inner = value.get(kind)
        if isinstance(inner, dict):
            return {"type": kind, **inner}
    return value


def sent_effort(request: ChatRequest) -> str | None:
    """The reasoning effort the request sets, or None when it leaves the model's default."""
    effort = request.params.get("reasoning_effort")
    return effort if isinstance(effort, str) else None


def parse_completion(
    data: Any,
    latency_ms: float,
    api: str = "chat",
    headers: Mapping[str, str] | None = None,
    prices: Prices | None = None,
    *,
    sent_effort: str | None = None,
    default_effort: str | None = None,
) -> Completion:
    """Read a chat completion's or a Response's JSON body; ValueError when it is not one.

    The reasoning effort recorded is `sent_effort`, else the one the body reports, else
    `default_effort`. An error object in a 200 body (or a Response whose status is "failed")
    raises ValueError with the server's message.
    """
    if not isinstance(data, dict):
        raise ValueError(f"the response is not a JSON object: {str(data)[:200]!r}")
    if "choices" not in data and "output" not in data and ("error" in data or "detail" in data):
        raise ValueError(f"the API answered 200 with an error: {body_message(data)}")
    if api == "responses" and (data.get("status") == "failed" or data.get("error")):
        # A Response that failed holds its error beside whatever output it got: not an answer.
        failed = body_message(data) if data.get("error") else "the response's status is 'failed'"
        raise ValueError(f"the API answered 200 with an error: {failed}")
    said = _responses_output(data) if api == "responses" else _chat_output(data)
    usage_data = data.get("usage")
    raw: dict[str, Any] = usage_data if isinstance(usage_data, dict) else {}
    usage = _responses_usage(raw) if api == "responses" else parse_usage(raw)
    # xAI's exact billed cost; absent elsewhere, and then the price table estimates it.
    ticks = _count(raw.get("cost_in_usd_ticks"))
    model = str(data.get("model") or "")
    fingerprint = data.get("system_fingerprint")
    reasoning = data.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    request_id = (headers or {}).get("x-request-id")
    return Completion(
        text=said.text,
        finish_reason=said.finish_reason,
        model=model,
        usage=usage,
        latency_ms=latency_ms,
        cost_usd=cost_from_usage(model, usage, ticks, prices),
        api=api,
        reasoning_effort=sent_effort or (effort if isinstance(effort, str) else None)
        or default_effort,
        request_id=request_id or None,
        system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        refusal=said.refusal,
        tool_calls=said.tool_calls,
    )


@dataclass(frozen=True)
class _Output:
    """What a reply said: text ('' when none), finish reason, refusal, tool calls."""

    text: str
    finish_reason: str | None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


def _chat_output(data: dict[str, Any]) -> _Output:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    refusal = message.get("refusal")
    calls = message.get("tool_calls")
    functions = [entry.get("function") for entry in calls if isinstance(entry, dict)] if (
        isinstance(calls, list)
    ) else []
    return _Output(
        str(message.get("content") or ""),
        choice.get("finish_reason"),
        refusal if isinstance(refusal, str) and refusal else None,
        tuple(_tool_call(function) for function in functions if isinstance(function, dict)),
    )


def _responses_output(data: dict[str, Any]) -> _Output:
    """The output text parts joined, refusals, function calls, and a chat-style finish reason."""
    output = data.get("output")
    if not isinstance(output, list):
        raise ValueError("the response has no output list")
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[ToolCall] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            calls.append(_tool_call(item))
        content = item.get("content") if item.get("type") == "message" else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict) and part.get("type") == "refusal":
                refusals.append(str(part.get("refusal") or ""))
    status = data.get("status")
    details = data.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    # Chat's names, so that `finish_reason` checks mean the same on both endpoints.
    if status == "incomplete" and reason == "max_output_tokens":
        finish: str | None = "length"
    elif status == "incomplete" and reason == "content_filter":
        finish = "content_filter"
    elif calls:
        finish = "tool_calls"
    elif status == "completed":
        finish = "stop"
    else:
        finish = str(status) if status is not None else None
    refusal = "".join(refusals)
    return _Output("".join(texts), finish, refusal or None, tuple(calls))


def _tool_call(call: dict[str, Any]) -> ToolCall:
    """A function call (chat's ``function`` object or a Responses item), arguments decoded."""
    arguments = call.get("arguments")
    if isinstance(arguments, str):
        # Text that is not JSON is kept as written: a check on it then fails, showing it.
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments)
    return ToolCall(name=str(call.get("name") or ""), arguments=arguments)


def parse_usage(raw: dict[str, Any]) -> Usage | None:
    """Chat usage, or None when a main count is missing or not a count (negative, NaN, text),
    or the total is less than prompt plus completion."""
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    total = raw.get("total_tokens")
    if total is not None and (_count(total) is None or total < prompt + completion):
        # The total holds prompt, completion and reasoning: less than two of them is no count.
        return None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_count(total) or prompt + completion,
        reasoning_tokens=_count(_get(raw, "completion_tokens_details", "reasoning_tokens")) or 0,
        cached_tokens=_count(_get(raw, "prompt_tokens_details", "cached_tokens")) or 0,
    )


def _responses_usage(raw: dict[str, Any]) -> Usage | None:
    """Responses usage (output_tokens include reasoning), or None when a main count is unknown
    or the total is not one (less than input plus output)."""
    prompt = _count(raw.get("input_tokens"))
    output = _count(raw.get("output_tokens"))
    if prompt is None or output is None:
        return None
    reasoning = _count(_get(raw, "output_tokens_details", "reasoning_tokens")) or 0
    total = raw.get("total_tokens")
    if total is not None and (_count(total) is None or total < prompt + output):
        return None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=max(output - reasoning, 0),
        total_tokens=_count(raw.get("total_tokens")) or prompt + output,
        reasoning_tokens=reasoning,
        cached_tokens=_count(_get(raw, "input_tokens_details", "cached_tokens")) or 0,
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
