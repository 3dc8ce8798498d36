"""The checks that measure the response against a range: length, words, lines, latency_ms,
cost_usd and tokens."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.checks.base import CheckDef, Runner, Site, Undecided, Verdict, brief, same
from pytest_grokeval.data import Completion
from pytest_grokeval.messages import plural

# --- length, words, lines, latency_ms, cost_usd, tokens --------------------------------------


def _number(n: float) -> str:
    return str(int(n)) if n == int(n) else f"{n:g}"


@dataclass(frozen=True)
class Quantity:
    """What a range check measures, and how its values read in messages."""

    verb: str  # the expected text reads "has at most 400 chars", "took at most 900 ms"
    show: Callable[[float], str]  # a value with its unit: "400 chars"
    measure: Callable[[Completion], float]
    integral: bool = True  # counts take ints only
    bare_is_max: bool = False  # a bare number is the maximum rather than the exact value
    number: Callable[[float], str] = _number  # a value alone: "between 10 and 400 chars"
    less: str = "fewer than"
    # The got text, when more than the measured value helps: tokens show in + out.
    detail: Callable[[Completion], str] | None = None
    reads_text: bool = True  # latency, cost and tokens are known without any text


def range_check(name: str, q: Quantity, summary: str) -> CheckDef:
    """The registry entry of a check that passes when the quantity is within its bounds."""
    kind = "an int" if q.integral else "a number"
    return CheckDef(
        name=name,
        summary=summary,
        argument=f"{kind} or a mapping with 'min' and/or 'max'",
        parse=_range_parser(q, kind),
        run=_range_runner(q),
        describe=_range_text(q),
        reads_text=q.reads_text,
    )


def _range_parser(q: Quantity, kind: str) -> Callable[[Any, Site], tuple[Any, Any]]:
    number_types: tuple[type, ...] = (int,) if q.integral else (int, float)

    def is_number(raw: Any) -> bool:
        return isinstance(raw, number_types) and not isinstance(raw, bool)

    def parse(raw: Any, site: Site) -> tuple[Any, Any]:
        if is_number(raw):
            bounds = {"max": raw} if q.bare_is_max else {"min": raw, "max": raw}
        elif isinstance(raw, Mapping) and raw:
            unknown = [key for key in raw if key not in ("min", "max")]
            if unknown:
                raise site.error(f"unknown key {unknown[0]!r}; allowed keys are 'min' and 'max'")
            bounds = {key: raw[key] for key in ("min", "max") if key in raw}
        else:
            raise site.bad(raw)
        for key, bound in bounds.items():
            if not is_number(bound) or not 0 <= bound < math.inf:  # rejects NaN too
                raise site.error(f"{key!r} must be {kind} >= 0, got {brief(bound)}")
        if bounds.get("min", 0) > bounds.get("max", math.inf):
            raise site.error(f"'min' ({bounds['min']}) is greater than 'max' ({bounds['max']})")
        return same(bounds)

    return parse


def _range_runner(q: Quantity) -> Runner:
    def run(bounds: dict[str, float], response: Completion) -> Verdict:
        measured = q.measure(response)
        passed = bounds.get("min", 0) <= measured <= bounds.get("max", math.inf)
        return passed, q.detail(response) if q.detail else q.show(measured)

    return run


def _range_text(q: Quantity) -> Callable[[Any, bool], str]:
    def describe(bounds: dict[str, float], negated: bool) -> str:
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and high is not None:
            if low == high:
                text = f"{'not ' if negated else ''}exactly {q.show(low)}"
            elif negated:
                text = f"{q.less} {q.number(low)} or more than {q.show(high)}"
            else:
                text = f"between {q.number(low)} and {q.show(high)}"
        elif high is not None:
            text = f"more than {q.show(high)}" if negated else f"at most {q.show(high)}"
        else:
            text = f"{q.less} {q.show(low or 0)}" if negated else f"at least {q.show(low or 0)}"
        return f"{q.verb} {text}"

    return describe


def _counted(word: str) -> Callable[[float], str]:
    return lambda n: plural(int(n), word)


def _milliseconds(n: float) -> str:
    return f"{n:.1f}".removesuffix(".0") + " ms"


def _usd(n: float) -> str:
    return f"${n:.6g}"


def _cost(response: Completion) -> float:
    if response.cost_usd is None:
        why = "no usage" if response.usage is None else "no cost, and its model no known price"
        raise Undecided(f"the cost is unknown: the response reported {why}")
    return response.cost_usd


def _count_chars(response: Completion) -> int:
    return len(response.text)


def _count_words(response: Completion) -> int:
    return len(response.text.split())


def _count_lines(response: Completion) -> int:
    return sum(1 for line in response.text.splitlines() if line.strip())


def _latency(response: Completion) -> float:
    if response.latency_ms is None:
        raise Undecided("the latency is unknown: the recording holds none")
    return response.latency_ms


def _tokens(response: Completion) -> int:
    if response.usage is None:
        raise Undecided("the token count is unknown: the response reported no usage")
    return response.usage.total_tokens


def _tokens_in_out(response: Completion) -> str:
    usage = response.usage
    if usage is None:
        return "unknown tokens"
    return (
        f"{plural(usage.total_tokens, 'token')} "
        f"({usage.prompt_tokens} in + {usage.output_tokens} out)"
    )


LENGTH = Quantity("has", _counted("char"), _count_chars)
WORDS = Quantity("has", _counted("word"), _count_words)
LINES = Quantity("has", _counted("non-empty line"), _count_lines)
LATENCY = Quantity(
    "took",
    _milliseconds,
    _latency,
    integral=False,
    bare_is_max=True,
    less="less than",
    reads_text=False,
)
COST = Quantity(
    "cost",
    _usd,
    _cost,
    integral=False,
    bare_is_max=True,
    number=_usd,
    less="less than",
    reads_text=False,
)
TOKENS = Quantity(
    "used",
    _counted("token"),
    _tokens,
    bare_is_max=True,
    detail=_tokens_in_out,
    reads_text=False,
)
