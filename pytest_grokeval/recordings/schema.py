"""The recordings file format as a JSON Schema: what replay may rely on in every entry."""

from __future__ import annotations

from typing import Any

FORMAT_VERSION = 1

_COUNT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
_NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_STRING_OR_NULL = {"type": ["string", "null"]}

# Unknown figures are null (issue 12), and later fields are optional, so that files written
# before them still load. No additionalProperties: false, so that a newer plugin's extra keys
# do not break an older one reading the same file.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string"},
        "finish_reason": _STRING_OR_NULL,
        "model": _STRING_OR_NULL,
        "usage": {
            "type": ["object", "null"],
            "properties": dict.fromkeys(
                (
                    "prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens",
                    "cached_tokens",
                ),
                _COUNT_OR_NULL,
            ),
        },
        "latency_ms": _NUMBER_OR_NULL,
        "cost_usd": _NUMBER_OR_NULL,
        "refusal": _STRING_OR_NULL,
        "tool_calls": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "arguments": {}},
            },
        },
        "endpoint": {"enum": ["chat", "responses", None]},
        "via": {"enum": ["realtime", "batch", None]},
        "reasoning_effort": _STRING_OR_NULL,
        "request_id": _STRING_OR_NULL,
    },
}

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sample", "fingerprint", "request", "response"],
    "properties": {
        "sample": {"type": "integer", "minimum": 0},
        "fingerprint": {"type": "string"},
        "request": {"type": "object"},
        "response": RESPONSE_SCHEMA,
    },
}

RECORDINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pytest-grokeval recordings",
    "type": "object",
    "required": ["version", "entries"],
    "properties": {
        "version": {"const": FORMAT_VERSION},
        "about": {"type": "string"},
        "entries": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": ENTRY_SCHEMA},
        },
    },
}

# One line of a journal: an entry that also names its item.
JOURNAL_LINE_SCHEMA: dict[str, Any] = {
    **ENTRY_SCHEMA,
    "required": ["item", *ENTRY_SCHEMA["required"]],
    "properties": {**ENTRY_SCHEMA["properties"], "item": {"type": "string"}},
}
