"""The JSON files' reader: its schema verdicts and its numbers."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema.validators import Draft202012Validator

from pytest_grokeval.jsonfile import conforms, loads
from pytest_grokeval.recordings.schema import JOURNAL_LINE_SCHEMA, RECORDINGS_SCHEMA

# Every property the schemas name, so that every keyword of them is exercised.
ENTRY: dict[str, Any] = {
    "item": "suite.yaml::case",
    "sample": 0,
    "fingerprint": "89a5af70c8434ad7",
    "request": {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]},
    "response": {
        "text": "hello",
        "finish_reason": "stop",
        "model": "grok-4.3",
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "reasoning_tokens": 0,
            "cached_tokens": 0,
        },
        "latency_ms": 18.2,
        "cost_usd": 4.6e-05,
        "refusal": None,
        "tool_calls": [{"name": "lookup", "arguments": {"q": 1}}],
        "endpoint": "chat",
        "via": "realtime",
        "reasoning_effort": "low",
        "request_id": "req-1",
    },
}
RECORDINGS = {"version": 1, "about": "made here", "entries": {"case": [ENTRY]}}
# What a hand edit or a damaged file can put in place of any one value.
REPLACEMENTS: list[Any] = [None, True, False, 0, 1, -1, 1.0, -0.5, math.inf, "", "x", [], {}, [1]]


def mutations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, mutated value at path) for every place in `value`: replaced, removed, added to."""
    for replacement in REPLACEMENTS:
        yield path, replacement
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from mutations(inner, (*path, key))
            yield (*path, key), _REMOVE
        yield (*path, "unknown"), 1
    elif isinstance(value, list) and value:
        yield from mutations(value[0], (*path, 0))
        yield path, value * 2


_REMOVE = object()


def mutated(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(document)
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    if value is _REMOVE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


@pytest.mark.parametrize(
    ("schema", "document"),
    [(RECORDINGS_SCHEMA, RECORDINGS), (JOURNAL_LINE_SCHEMA, ENTRY)],
    ids=["recordings", "journal line"],
)
def test_the_fast_check_and_jsonschema_agree_on_every_one_value_change(
    schema: dict[str, Any], document: Any
) -> None:
    reference = Draft202012Validator(schema)
    assert reference.is_valid(document)
    verdicts = {True: 0, False: 0}
    disagreements = []
    for path, value in mutations(document):
        candidate = mutated(document, path, value)
        expected = reference.is_valid(candidate)
        verdicts[expected] += 1
        if conforms(candidate, schema) != expected:
            disagreements.append((path, value, expected))
    assert disagreements == []
    # Both verdicts occur many times, so agreement is not agreement on one answer.
    assert min(verdicts.values()) > 50, verdicts


NUMBERS = [
    "1" * 199 + "e99",
    "9" * 199 + ".9e99",
    "-" + "9" * 199 + "e+99",
    "1e308",
    "1.7976931348623157e308",
    "1e309",
    "-1e400",
    "1E0400",
    "1" * 310,
    "1" * 5000,
    "0." + "0" * 400 + "1",
    "1e-400",
]


@pytest.mark.parametrize("literal", NUMBERS, ids=lambda literal: literal[:12] + f"~{len(literal)}")
def test_every_number_read_is_finite_or_refused(literal: str) -> None:
    try:
        value = loads(f'{{"cost_usd": [{literal}]}}')["cost_usd"][0]
    except ValueError as exc:
        assert "too large" in str(exc)
    else:
        assert math.isfinite(value)
