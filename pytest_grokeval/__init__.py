"""pytest-grokeval: regression-test LLM prompts against xAI's Grok API as pytest items."""

from __future__ import annotations

from pytest_grokeval.checks.registry import ExpectError, expect
from pytest_grokeval.data import Completion, ToolCall, Usage

__version__ = "0.1.0"
__all__ = ["Completion", "ExpectError", "ToolCall", "Usage", "expect"]
