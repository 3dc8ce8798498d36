"""The `judge` check: a Grok grader call with a fixed rubric prompt and a JSON verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.data import ChatRequest, Completion, FetchError, Outcome

# The grader's instructions are fixed and documented (README, "judge"), so that a verdict
# depends only on the rubric, the graded response and the judge model.
JUDGE_SYSTEM = (
    "You grade a response against a rubric. Judge only what the rubric asks. "
    'Reply with one JSON object and nothing else: {"pass": true or false, '
    '"reason": "one sentence explaining the verdict"}.'
)
JUDGE_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 300}


class JudgeError(Exception):
    """The grader gave no usable verdict: an error of the item, never a pass."""


@dataclass(frozen=True)
class Rubric:
    """A judge check's argument: the rubric text, and the grader model (None: the run's)."""
    rubric: str
    model: str | None = None


def parse_rubric(raw: Any) -> Rubric:
    """A rubric string, or {rubric, model}; raises ValueError with the reason."""
    rubric: Any
    model: Any
    if isinstance(raw, str):
        rubric, model = raw, None
    elif isinstance(raw, dict) and set(raw) <= {"rubric", "model"} and "rubric" in raw:
        rubric, model = raw["rubric"], raw.get("model")
    else:
        raise ValueError("a rubric string or a mapping with 'rubric' and optional 'model'")
    if not isinstance(rubric, str) or not rubric.strip():
        raise ValueError("a non-empty rubric")
    if model is not None and not (isinstance(model, str) and model):
        raise ValueError("a model name as 'model'")
    return Rubric(rubric, model)


def grader_request(rubric: Rubric, response: Completion, default_model: str) -> ChatRequest:
    """The grader call for one response; its fingerprint changes when the response does."""
    prompt = f"Rubric:\n{rubric.rubric}\n\nResponse to grade:\n<<<\n{response.text}\n>>>"
    return ChatRequest(
        model=rubric.model or default_model,
        messages=(
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": prompt},
        ),
        params=dict(JUDGE_PARAMS),
    )


def verdict(outcome: Outcome | None) -> tuple[bool, str]:
    """(passed, reason) from the grader's reply; JudgeError when there is none to read."""
    if outcome is None:
        raise JudgeError("the judge was not asked (no grader response was fetched)")
    if isinstance(outcome, FetchError):
        raise JudgeError(f"the judge request failed: {outcome.message}")
    text = outcome.text.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        reply = outcome.text[:200]
        raise JudgeError(f"the judge's reply is not a JSON verdict: {reply!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("pass"), bool):
        raise JudgeError(
            f"the judge's reply has no boolean 'pass': {outcome.text[:200]!r}"
        )
    return data["pass"], str(data.get("reason") or "(no reason given)")
