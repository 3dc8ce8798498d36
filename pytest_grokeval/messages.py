"""Small text helpers shared by every message the plugin prints: quoting, plurals, responses."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_grokeval.data import Completion


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    """``1 check``, ``2 checks``; irregular words pass their plural form."""
    return f"{n} {word if n == 1 else plural_form or word + 's'}"


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
    """The response block that ends every failure: size, metadata, and the text shortened."""
    facts = [f"model {c.model}"] if c.model else []
    facts.append(f"{c.latency_ms:.0f} ms")
    if c.usage is None:
        facts.append("tokens unknown (no usage reported)")
    else:
        facts.append(f"{c.usage.prompt_tokens} in + {c.usage.output_tokens} out tokens")
    facts.append("cost unknown" if c.cost_usd is None else f"${c.cost_usd:.6f}")
    if c.finish_reason != "stop":
        facts.append(f"finish_reason {c.finish_reason!r}")
    facts.append("replayed" if c.replayed else "live")
    head = f"response ({plural(len(c.text), 'char')}; {', '.join(facts)}):"
    return f"{head}\n  {shorten(c.text, limit)}"
