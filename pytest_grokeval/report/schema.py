"""The versioned JSON report format: its JSON Schema, and reading a report back as a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema.validators import Draft202012Validator

from pytest_grokeval.jsonfile import JSONFileError, load_json

REPORT_VERSION = 1
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")

_INT = {"type": "integer", "minimum": 0}
_NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_STRING_OR_NULL = {"type": ["string", "null"]}
_OUTCOME_OR_NULL = {"enum": [*OUTCOMES, None]}
_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}


def _record(**properties: Any) -> dict[str, Any]:
    """A JSON object whose properties are all required."""
    return {"type": "object", "required": list(properties), "properties": properties}


# Consumers must ignore keys they do not know: later versions 1.x only add keys, and anything
# that removes or changes a key bumps "version". Hence no additionalProperties: false below.
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pytest-grokeval report",
    "type": "object",
    "required": ["version", "created", "pytest_grokeval", "summary", "baseline", "items"],
    "properties": {
        "version": {"const": REPORT_VERSION},
        "created": {"type": "string", "description": "ISO 8601 time, UTC"},
        "pytest_grokeval": {"type": "string", "description": "the plugin version that wrote it"},
        "summary": {"$ref": "#/$defs/summary"},
        "baseline": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/comparison"}]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "$defs": {
        "outcomes": {
            "type": "object",
            "required": list(OUTCOMES),
            "properties": dict.fromkeys(OUTCOMES, _INT),
        },
        "tokens": {
            "type": "object",
            "required": ["prompt", "output", "total"],
            "properties": {
                "prompt": _INT, "output": _INT, "total": _INT,
                "unknown": {
                    **_INT, "description": "responses without usage, left out of the sums",
                },
            },
        },
        "requests": {
            "description": "what this run sent; null when it sent nothing",
            "type": ["object", "null"],
            "required": [
                "sent", "attempts", "retried", "failed", "unsettled", "possibly_billed_usd",
                "unpriced", "lost", "no_usage", "prompt_tokens", "output_tokens", "cost_usd",
                "judge",
            ],
            "properties": {
                "sent": _INT,
                "attempts": {**_INT, "description": "HTTP attempts, retries included"},
                "retried": _INT,
                "failed": _INT,
                "unsettled": {
                    **_INT,
                    "description": "attempts of unknown cost: timed out, dropped after "
                    "sending, interrupted, malformed, or a response without usage or price",
                },
                "possibly_billed_usd": {
                    "type": "number", "minimum": 0,
                    "description": "upper estimate of what the unsettled attempts cost, "
                    "leaving out the `unpriced` ones",
                },
                "unpriced": {**_INT, "description": "unsettled attempts with no known price"},
                "lost": {**_INT, "description": "unsettled attempts that brought no response"},
                "no_usage": {**_INT, "description": "responses without valid usage"},
                "prompt_tokens": _INT,
                "output_tokens": _INT,
                "cost_usd": {
                    "type": "number", "minimum": 0,
                    "description": "the cost of the responses of known cost; `unsettled` counts "
                    "the attempts left out",
                },
                "judge": {
                    "type": "object",
                    "description": "grader calls of judge checks, included in the figures above",
                    "required": ["calls", "prompt_tokens", "output_tokens", "cost_usd", "unknown"],
                    "properties": {
                        "calls": _INT, "prompt_tokens": _INT, "output_tokens": _INT,
                        "cost_usd": {"type": "number", "minimum": 0}, "unknown": _INT,
                    },
                },
            },
        },
        "summary": {
            "type": "object",
            "required": [
                "items", "outcomes", "pass_rate", "samples", "responses", "errors", "replayed",
                "tokens", "cost_usd", "latency_ms", "suites",
            ],
            "properties": {
                "items": _INT,
                "outcomes": {"$ref": "#/$defs/outcomes"},
                "pass_rate": {
                    "type": ["number", "null"], "minimum": 0, "maximum": 1,
                    "description": "passed / (passed + failed + error); null when none ran",
                },
                "samples": _INT,
                "responses": _INT,
                "errors": _INT,
                "replayed": _INT,
                "tokens": {"$ref": "#/$defs/tokens"},
                "cost_usd": {
                    "type": "number", "minimum": 0,
                    "description": "the sum of known costs, grader replies included",
                },
                "cost_unknown": {**_INT, "description": "responses of unknown cost"},
                "judge": _record(
                    responses=_INT,
                    tokens={"$ref": "#/$defs/tokens"},
                    cost_usd={"type": "number", "minimum": 0},
                    cost_unknown={**_INT, "description": "grader replies of unknown cost"},
                ),
                "requests": {"$ref": "#/$defs/requests"},
                "latency_ms": {
                    "type": "object",
                    "required": ["p50", "p95", "max"],
                    "properties": {
                        **dict.fromkeys(("p50", "p95", "max"), _NUMBER_OR_NULL),
                        "unknown": {
                            **_INT, "description": "responses of unknown latency, left out",
                        },
                    },
                },
                "suites": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["suite", "items", "outcomes", "pass_rate"],
                        "properties": {
                            "suite": {"type": "string"},
                            "items": _INT,
                            "outcomes": {"$ref": "#/$defs/outcomes"},
                            "pass_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                        },
                    },
                },
            },
        },
        "item": {
            "type": "object",
            "required": [
                "id", "suite", "line", "name", "outcome", "message", "duration_s", "model",
                "latency_ms", "tokens", "cost_usd", "replayed", "samples_passed", "samples",
            ],
            "properties": {
                "id": {"type": "string", "description": "the pytest node id"},
                "suite": {"type": "string", "description": "the suite file, from the rootdir"},
                "line": {"type": "integer", "minimum": 1},
                "name": {"type": "string"},
                "case_id": {"type": "string"},
                "repeat": {"type": "integer", "minimum": 1},
                "min_pass_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "outcome": {"enum": list(OUTCOMES)},
                "message": {
                    "type": ["string", "null"],
                    "description": "the failure text, or the skip or xfail reason",
                },
                "duration_s": {"type": "number", "minimum": 0},
                "model": {**_STRING_OR_NULL, "description": "the model that answered first"},
                "latency_ms": {
                    **_NUMBER_OR_NULL,
                    "description": "the slowest sample; null when a response's is unknown",
                },
                "tokens": {
                    "oneOf": [{"type": "null"}, {"$ref": "#/$defs/tokens"}],
                    "description": "null when a response reported no usage",
                },
                "cost_usd": {
                    **_NUMBER_OR_NULL, "description": "null when a response's cost is unknown",
                },
                "replayed": {"type": ["boolean", "null"], "description": "all from recordings"},
                "samples_passed": _INT,
                "samples": {"type": "array", "items": {"$ref": "#/$defs/sample"}},
            },
        },
        "sample": {
            "type": "object",
            "required": ["sample", "fingerprint", "request"],
            "properties": {
                "sample": _INT,
                "fingerprint": {"type": "string"},
                "request": _record(
                    model=_STRING,
                    messages={"type": "array", "items": {"type": "object"}},
                    params={"type": "object"},
                ),
                "response": {"$ref": "#/$defs/response"},
                "error": {"$ref": "#/$defs/error"},
                "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
                "passed": {"type": "boolean"},
                "judge": {
                    "type": "array",
                    "description": "the grader replies of this sample's judge checks",
                    "items": _record(check=_STRING, response={"$ref": "#/$defs/response"}),
                },
            },
            # A sample either got a response, which was checked, or an error.
            "oneOf": [{"required": ["response", "checks", "passed"]}, {"required": ["error"]}],
        },
        "response": {
            "type": "object",
            "required": [
                "text", "finish_reason", "model", "usage", "latency_ms", "cost_usd", "replayed",
            ],
            "properties": {
                "text": _STRING,
                "finish_reason": _STRING_OR_NULL,
                "model": _STRING,
                "usage": {
                    "type": ["object", "null"],
                    "description": "null when the API reported no valid usage: tokens unknown",
                    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                    "properties": {
                        "prompt_tokens": _INT,
                        "completion_tokens": _INT,
                        "total_tokens": _INT,
                        "reasoning_tokens": _INT,
                        "cached_tokens": _INT,
                    },
                },
                "latency_ms": {
                    **_NUMBER_OR_NULL,
                    "description": "null when unknown: a recording without it",
                },
                "cost_usd": _NUMBER_OR_NULL,
                "replayed": {"type": "boolean"},
                "refusal": {"type": "string", "description": "the API's refusal, when given"},
                "tool_calls": {
                    "type": "array",
                    "description": "the tool calls the model asked for, when any",
                    "items": _record(
                        name=_STRING,
                        arguments={"description": "decoded JSON, or the text if not JSON"},
                    ),
                },
            },
        },
        "error": _record(message=_STRING, status={"type": ["integer", "null"]}, kind=_STRING),
        "check": _record(name=_STRING, passed=_BOOL, expected=_STRING, got=_STRING),
        "change": {
            "type": "object",
            "required": ["id", "before", "after"],
            "properties": {
                "id": {"type": "string"},
                "before": _OUTCOME_OR_NULL,
                "after": _OUTCOME_OR_NULL,
                "samples": {
                    "type": "array",
                    "description": "changed responses only: each changed sample's old text",
                    "items": _record(sample=_INT, previous=_STRING),
                },
            },
        },
        "comparison": {
            "type": "object",
            "required": [
                "path", "created", "regressions", "fixes", "new", "removed", "changed",
            ],
            "properties": {
                "path": _STRING,
                "created": _STRING,
                **{
                    key: {"type": "array", "items": {"$ref": "#/$defs/change"}}
                    for key in ("regressions", "fixes", "new", "removed", "changed")
                },
            },
        },
    },
}


class ReportFileError(Exception):
    """A baseline that is not a readable report of this version: the message names the file."""


def validator() -> Draft202012Validator:
    """A validator for reports, for the baseline and for tests."""
    return Draft202012Validator(REPORT_SCHEMA)


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate a report written by --grok-report; ReportFileError says what is wrong."""
    hint = "pass a file written by --grok-report"

    def check_version(document: Any) -> None:
        # A clearer message than the schema's "1 was expected" for reports of another version.
        if isinstance(document, dict) and document.get("version", REPORT_VERSION) != (
            REPORT_VERSION
        ):
            raise JSONFileError(
                f"{path}: baseline report version {document['version']!r} is not supported "
                f"(this pytest-grokeval reads version {REPORT_VERSION}); {hint}"
            )

    try:
        document = load_json(
            path, what="baseline", hint=hint, schema=REPORT_SCHEMA, check=check_version
        )
    except FileNotFoundError as exc:
        raise ReportFileError(f"{path}: cannot read the baseline: {exc.strerror}") from exc
    except JSONFileError as exc:
        raise ReportFileError(str(exc)) from exc
    return dict(document)
