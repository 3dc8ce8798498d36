"""What the fake answers: the `Reply` a test asks for, rendered as xAI's JSON bodies.

Chat completions (``/v1/chat/completions``) and Responses (``/v1/responses``) render the same
`Reply`; errors use xAI's flat ``{"code": ..., "error": ...}`` body on both.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .request import FakeRequest, prompt_chars

# xAI answers errors with a flat body whose `code` is the gRPC status text, not OpenAI's nested
# `{"error": {...}}` object; the SDK then exposes the message string as `exc.body`.
CODE_TEXT = {
    400: "Client specified an invalid argument",
    401: "Unauthenticated",
    403: "Permission denied",
    404: "Some requested entity was not found",
    429: "Some resource has been exhausted",
    500: "Internal error",
    503: "The service is currently unavailable",
}
# xAI bills in ticks (1 USD = 1e10 ticks); the fake charges $1.25 / $2.50 per 1M tokens.
TICKS_PER_PROMPT_TOKEN = 12_500
TICKS_PER_COMPLETION_TOKEN = 25_000


@dataclass
class Reply:
    """What the server does for one model request. Unset fields mean the default behaviour.

    Answer: `content` (default: the `answers` match, else ``"You said: <prompt>"``),
    `finish_reason` (``"length"`` makes a Responses answer ``status: "incomplete"``), `model`,
    `usage` (keys override the chat usage object; ``prompt_tokens`` and ``completion_tokens``
    also set the Responses counts, whose own keys override too), `null_content` (content is
    JSON null), `refusal`, `tool_calls` (``[{"name": str, "arguments": dict or raw str}]``;
    content turns null when unset, as does a refusal's), `reasoning_tokens`, `omit_usage`
    (no ``usage`` key).

    Errors: a `status` other than 200 sends ``{"code": code or xAI's text, "error": error}``;
    `echo_authorization` appends the Authorization header received, verbatim, to that text.

    Transport: `headers`, `retry_after`/`retry_after_ms` (seconds/milliseconds, as headers),
    `latency` (seconds, instead of the server's), `hang` (until the client closes), `drop`
    (close without answering), `bad_json` (half the body), `raw_body` (exactly this text,
    UTF-8, as the body with `status`), `trickle` (seconds between single body bytes, headers
    and Content-Length first).
    """

    content: str | None = None
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float | None = None
    hang: bool = False
    drop: bool = False
    bad_json: bool = False
    finish_reason: str = "stop"
    model: str | None = None
    usage: dict[str, int] | None = None
    null_content: bool = False
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_tokens: int | None = None
    omit_usage: bool = False
    raw_body: str | None = None
    code: str | None = None
    echo_authorization: bool = False
    trickle: float | None = None


def reply_headers(reply: Reply) -> dict[str, str]:
    """The reply's own headers plus its retry-after ones."""
    headers = dict(reply.headers)
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    if reply.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{reply.retry_after_ms:g}"
    return headers


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    """xAI's flat error body; `code` defaults to the gRPC status text for `status`."""
    text = code if code is not None else CODE_TEXT.get(status, "Unknown error")
    return json.dumps({"code": text, "error": message}).encode()


def render(
    request: FakeRequest, reply: Reply, content: str, model: str, effort: str | None
) -> bytes:
    """The body for `reply` to `request`; `content` and `model` are the resolved defaults.

    `effort` is the reasoning effort a Responses answer reports (None: not reported).
    """
    if reply.raw_body is not None:
        return reply.raw_body.encode("utf-8", "surrogatepass")
    if reply.status != 200:
        message = reply.error or f"injected {reply.status}"
        if reply.echo_authorization:
            received = request.headers.get("authorization", "")
            message = f"{message}; got header Authorization: {received}"
        return error_body(reply.status, message, reply.code)
    text = None if _content_is_null(reply) else content
    if request.path.endswith("/responses"):
        document = _response(request, reply, text, model, effort)
    else:
        document = _completion(request, reply, text, model)
    data = json.dumps(document).encode()
    return data[: len(data) // 2] if reply.bad_json else data


def tokens_used(request: FakeRequest, reply: Reply, content: str) -> int:
    """The total tokens a 200 answer of `reply` reports (what a token limit counts)."""
    prompt, output, reasoning = _token_counts(request, reply, content)
    return prompt + output + reasoning


def _content_is_null(reply: Reply) -> bool:
    if reply.null_content:
        return True
    return reply.content is None and bool(reply.tool_calls or reply.refusal is not None)


def _token_counts(request: FakeRequest, reply: Reply, text: str | None) -> tuple[int, int, int]:
    """Prompt, visible output and reasoning tokens, at the fake's four characters a token."""
    override = reply.usage or {}
    prompt = override.get("prompt_tokens", max(1, prompt_chars(request.body) // 4))
    output = override.get("completion_tokens", max(1, len(text or "") // 4))
    return prompt, output, reply.reasoning_tokens or 0


def _arguments(call: dict[str, Any]) -> str:
    # A string goes out as it is, so a test can send arguments that are not valid JSON.
    arguments = call.get("arguments", {})
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _ticks(prompt: int, output: int) -> int:
    return prompt * TICKS_PER_PROMPT_TOKEN + output * TICKS_PER_COMPLETION_TOKEN


def _completion(
    request: FakeRequest, reply: Reply, text: str | None, model: str
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": reply.refusal}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call-{request.index}-{position}",
                "type": "function",
                "function": {"name": call["name"], "arguments": _arguments(call)},
            }
            for position, call in enumerate(reply.tool_calls)
        ]
    completion: dict[str, Any] = {
        "id": f"fake-{request.index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "system_fingerprint": "fp_fake",
    }
    if not reply.omit_usage:
        prompt, output, reasoning = _token_counts(request, reply, text)
        # Chat's completion_tokens leaves reasoning out; the total and the bill count it.
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output + reasoning,
            "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": prompt},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
            "num_sources_used": 0,
            "cost_in_usd_ticks": _ticks(prompt, output + reasoning),
        }
        usage.update(reply.usage or {})
        completion["usage"] = usage
    return completion


def _response(
    request: FakeRequest, reply: Reply, text: str | None, model: str, effort: str | None
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    if text is not None:
        parts.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if reply.refusal is not None:
        parts.append({"type": "refusal", "refusal": reply.refusal})
    if parts or reply.null_content or not reply.tool_calls:
        output.append(
            {
                "type": "message",
                "id": f"msg-fake-{request.index}",
                "role": "assistant",
                "status": "completed",
                "content": None if reply.null_content and not parts else parts,
            }
        )
    for position, call in enumerate(reply.tool_calls or []):
        output.append(
            {
                "type": "function_call",
                "id": f"fc-fake-{request.index}-{position}",
                "call_id": f"call-{request.index}-{position}",
                "name": call["name"],
                "arguments": _arguments(call),
                "status": "completed",
            }
        )
    incomplete = reply.finish_reason == "length"
    body = request.body
    response: dict[str, Any] = {
        "id": f"fake-{request.index}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "output": output,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "reasoning": {"effort": effort, "summary": None},
        "store": body.get("store", True),
        "text": body.get("text", {"format": {"type": "text"}}),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "error": None,
    }
    if not reply.omit_usage:
        prompt, visible, reasoning = _token_counts(request, reply, text)
        # Responses' output_tokens already holds the reasoning tokens, unlike chat.
        output_tokens = visible + reasoning
        usage: dict[str, Any] = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + output_tokens,
            "num_sources_used": 0,
            "cost_in_usd_ticks": _ticks(prompt, output_tokens),
        }
        usage.update({k: v for k, v in (reply.usage or {}).items() if k in usage})
        response["usage"] = usage
    return response
