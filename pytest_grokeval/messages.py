"""Small text helpers shared by every message the plugin prints: quoting, plurals, responses."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pytest_grokeval.data import Completion, ToolCall


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    """``1 check``, ``2 checks``; irregular words pass their plural form."""
    return f"{n} {word if n == 1 else plural_form or word + 's'}"


def usd(value: float, decimals: int = 6) -> str:
    """``$0.001234``; a figure of a billion dollars or more in short form (``$1.7e+308``), so
    that an absurd recorded cost does not print hundreds of digits."""
    return f"${value:.{decimals}f}" if value < 1e9 else f"${value:.6g}"


def shorten(text: str, limit: int = 600) -> str:
    """``repr(text)``, or for long text its quoted head and tail around a count of what was cut."""
    whole = repr(text)
    if len(whole) <= limit:
        return whole
    quote = whole[0]
    widest_marker = len(f" ... [{plural(len(text), 'char')} omitted] ... ")
    # A floor keeps some text visible even when a caller passes a tiny limit.
    budget = max(limit - widest_marker - 2, 20)
    head = _fit(text, quote, budget - budget // 2)
    tail = _fit(reversed(text), quote, budget // 2)[::-1]
    omitted = len(text) - len(head) - len(tail)
    return (
        f"{quote}{''.join(head)} ... [{plural(omitted, 'char')} omitted] ... {''.join(tail)}{quote}"
    )


def _fit(chars: Iterable[str], quote: str, width: int) -> list[str]:
    """The escaped characters that fit in ``width`` columns, in the order given."""
    pieces: list[str] = []
    used = 0
    for char in chars:
        escaped = _escape(char, quote)
        if used + len(escaped) > width:
            break
        pieces.append(escaped)
        used += len(escaped)
    return pieces


def _escape(char: str, quote: str) -> str:
    # repr() of a lone "'" picks double quotes, so escape it when the whole text is in single
    # quotes; the reverse never happens because repr only uses '"' for text without any '"'.
    if char == "'" and quote == "'":
        return "\\'"
    return repr(char)[1:-1]


def describe_response(c: Completion, limit: int = 600) -> str:
    """The response block that ends every failure: size, metadata, the text shortened, and
    the refusal and tool calls the API returned beside it."""
    facts = [f"model {c.model}"] if c.model else []
    facts.append("latency unknown" if c.latency_ms is None else f"{c.latency_ms:.0f} ms")
    if c.usage is None:
        facts.append("tokens unknown (no usage reported)")
    else:
        tokens = f"{c.usage.prompt_tokens} in + {c.usage.output_tokens} out tokens"
        if c.usage.reasoning_tokens:
            tokens += f" ({c.usage.reasoning_tokens} reasoning)"
        facts.append(tokens)
    facts.append("cost unknown" if c.cost_usd is None else usd(c.cost_usd))
    if c.finish_reason != "stop":
        facts.append(f"finish_reason {c.finish_reason!r}")
    facts.append("replayed" if c.replayed else "live")
    size = plural(len(c.text), "char") if c.has_text else "no text"
    lines = [f"response ({size}; {', '.join(facts)}):"]
    if c.has_text or (c.refusal is None and not c.tool_calls):
        lines.append(f"  {shorten(c.text, limit)}")
    if c.refusal is not None:
        lines.append(f"  refusal: {shorten(c.refusal, limit)}")
    lines.extend(f"  tool call: {show_call(call, limit)}" for call in c.tool_calls)
    return "\n".join(lines)


def show_call(call: ToolCall, limit: int = 200) -> str:
    """``get_weather({"city": "Paris"})``, its arguments shortened when long."""
    if isinstance(call.arguments, str):
        arguments = shorten(call.arguments, limit)
    else:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        if len(arguments) > limit:
            arguments = shorten(arguments, limit)
    return f"{call.name}({arguments})"


def no_text(c: Completion) -> str:
    """Why a response without text content has none, for every text check that fails on it:
    ``the model returned no text (refusal: '...')``."""
    if c.refusal is not None:
        why = f"refusal: {shorten(c.refusal, 120)}"
    elif c.tool_calls:
        names = ", ".join(call.name for call in c.tool_calls)
        why = f"{'tool call' if len(c.tool_calls) == 1 else 'tool calls'} {names}"
    elif c.finish_reason == "length":
        spent = c.usage.reasoning_tokens if c.usage is not None else 0
        after = f" after {plural(spent, 'reasoning token')}" if spent else ""
        why = f"finish_reason length{after}: raise max_tokens"
    else:
        why = f"empty content, finish_reason {c.finish_reason!r}"
    return f"the model returned no text ({why})"
