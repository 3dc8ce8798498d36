"""The values that flow through a run: requests, completions and fetch errors."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Bump when the fingerprint's inputs change shape, so that old recordings read as stale.
FINGERPRINT_VERSION = 1
# The endpoints a request can go to: Chat Completions (every OpenAI-compatible server) and
# xAI's Responses API (what xAI recommends for evaluations).
APIS = ("chat", "responses")


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON: the one serialisation fingerprints are computed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ChatRequest:
    """One model request: what the model sees, which sample of a repeat it is, and the endpoint.

    `params` are written as for Chat Completions whatever the endpoint; engine/wire.py maps
    them to a Responses body when `api` is ``"responses"``.
    """

    model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any] = field(default_factory=dict)
    sample: int = 0
    api: str = "chat"

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short stable hash of everything that changes the answer (computed once)."""
        return _fingerprint(self)

    def identity(self) -> dict[str, Any]:
        """The parts of the request the fingerprint covers, as plain JSON data."""
        identity = {
            "model": self.model,
            "messages": list(self.messages),
            "params": self.params,
            "sample": self.sample,
        }
        # Only when it is not chat, so that recordings made before the endpoint existed replay.
        if self.api != "chat":
            identity["api"] = self.api
        return identity

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat.completions.create``."""
        return {**self.params, "model": self.model, "messages": list(self.messages)}

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatRequest) and other.fingerprint == self.fingerprint


def _fingerprint(request: ChatRequest) -> str:
    payload = canonical_json({"v": FINGERPRINT_VERSION, **request.identity()})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Usage:
    """Token counts as the API reported them (reasoning tokens are outside completion on xAI)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def output_tokens(self) -> int:
        """Billable output: completion plus reasoning, whichever convention the API uses."""
        return max(self.total_tokens - self.prompt_tokens, self.completion_tokens)

    def to_json(self) -> dict[str, int]:
        """Every count by its field name: prompt, completion, total, reasoning, cached tokens."""
        # Not dataclasses.asdict: it deep-copies, and this runs for every response recorded.
        return {name: getattr(self, name) for name in _USAGE_FIELDS}

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        """The usage a recording or report holds; None (JSON null, or not counts) is unknown."""
        if (
            not isinstance(data, dict)
            or data.get("prompt_tokens") is None
            or data.get("completion_tokens") is None
        ):
            return None
        counts = {}
        for name in _USAGE_FIELDS:
            value = data.get(name) or 0
            # type(), not isinstance(): true and false are no counts.
            if type(value) is not int or value < 0:
                return None
            counts[name] = value
        return cls(**counts)


_USAGE_FIELDS = tuple(field.name for field in dataclasses.fields(Usage))


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for: its name, and its arguments as parsed JSON.

    ``arguments`` is the decoded JSON value (usually a dict); text that is not JSON stays a str.
    """

    name: str
    arguments: Any

    def to_json(self) -> dict[str, Any]:
        """{name, arguments}, as recordings and reports hold it."""
        return {"name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: Any) -> ToolCall:
        """The call from to_json data; a bare value is a call of that name without arguments."""
        if not isinstance(data, dict):
            return cls(name=str(data), arguments={})
        return cls(name=str(data.get("name") or ""), arguments=data.get("arguments"))


@dataclass(frozen=True)
class Completion:
    """A response to check: the value of the ``grok_response`` fixture and of every YAML item.

    ``text`` is "" when the API returned no text content (null or empty); ``refusal`` and
    ``tool_calls`` then usually say what came back instead.
    """

    text: str
    finish_reason: str | None
    model: str
    usage: Usage | None  # None: the API sent no valid usage, so the token counts are unknown
    # None: unknown, only from a recording (hand edits, other tools); the API's are measured.
    latency_ms: float | None
    cost_usd: float | None  # None: unknown (no usage, or a model without a known price)
    replayed: bool = False
    # What xAI asks evaluators to record: the endpoint, the reasoning effort sent (or the
    # model's default), its request id (x-request-id) and system_fingerprint where given.
    api: str = "chat"
    reasoning_effort: str | None = None
    request_id: str | None = None
    system_fingerprint: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    via: str | None = None  # "batch" when read from xAI's Batch API; None: real time

    @property
    def has_text(self) -> bool:
        """False for a refusal, a reply of only tool calls, or an empty reply."""
        return self.text != ""

    def to_json(self) -> dict[str, Any]:
        """The completion as recordings and reports hold it; latency in ms rounded to 0.1 or None,
        cost in US dollars or None."""
        data: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "usage": None if self.usage is None else self.usage.to_json(),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "cost_usd": self.cost_usd,
            "api": self.api,
        }
        # Absent rather than null, so that recordings made without them stay unchanged.
        for key in _OPTIONAL_TRACE:
            if (value := getattr(self, key)) is not None:
                data[key] = value
        # Only when present, so that recordings of plain text replies keep their old shape.
        if self.refusal is not None:
            data["refusal"] = self.refusal
        if self.tool_calls:
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
        if self.via is not None:
            data["via"] = self.via
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> Completion:
        """The completion from to_json data; raises KeyError when 'text' is missing."""
        refusal = data.get("refusal")
        calls = data.get("tool_calls")
        return cls(
            text=str(data["text"]),
            finish_reason=data.get("finish_reason"),
            model=str(data.get("model") or ""),
            usage=Usage.from_json(data.get("usage")),
            latency_ms=None if data.get("latency_ms") is None else float(data["latency_ms"]),
            cost_usd=None if data.get("cost_usd") is None else float(data["cost_usd"]),
            replayed=replayed,
            api=str(data.get("api") or "chat"),
            reasoning_effort=_text_or_none(data.get("reasoning_effort")),
            request_id=_text_or_none(data.get("request_id")),
            system_fingerprint=_text_or_none(data.get("system_fingerprint")),
            refusal=None if refusal is None else str(refusal),
            tool_calls=tuple(map(ToolCall.from_json, calls)) if isinstance(calls, list) else (),
            via=None if data.get("via") is None else str(data["via"]),
        )




def cost_sum(costs: Iterable[float]) -> float | None:
    """The sum of known costs in US dollars, rounded to 8 decimals; None when it overflows.

    A recording may hold any finite number (a hand edit, another tool): two near 1e308 sum to
    inf, which no report can show as a figure, so such a sum is unknown.
    """
    total = sum(costs, 0.0)
    return round(total, 8) if math.isfinite(total) else None


_OPTIONAL_TRACE = ("reasoning_effort", "request_id", "system_fingerprint")


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class FetchError:
    """Why a request produced no completion; fails only the items that needed it."""

    message: str
    status: int | None = None
    kind: str = "api"  # api | timeout | connection | malformed | missing | interrupted | fatal

    def to_json(self) -> dict[str, Any]:
        """{message, status, kind}, as reports hold it."""
        return {"message": self.message, "status": self.status, "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FetchError:
        """The error from to_json data; raises KeyError when 'message' or 'kind' is missing."""
        return cls(message=str(data["message"]), status=data.get("status"), kind=data["kind"])


Outcome = Completion | FetchError
