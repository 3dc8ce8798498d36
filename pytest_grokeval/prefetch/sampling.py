"""Repeated sampling: how many passes a case needs, when to stop early, and the pass rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

# 95 % two-sided normal quantile, for the Wilson score interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Plan:
    """``repeat`` samples of which at least ``needed`` must pass."""

    repeat: int
    min_pass_rate: float

    @property
    def needed(self) -> int:
        # The smallest pass count whose share reaches the rate (a hair of slack for 0.1 * 10).
        return min(self.repeat, math.ceil(self.min_pass_rate * self.repeat - 1e-9))

    @property
    def allowed_failures(self) -> int:
        return self.repeat - self.needed

    def verdict(self, passes: int, failures: int) -> bool | None:
        """True or False once the outcome can no longer change, else None."""
        if passes >= self.needed:
            return True
        if failures > self.allowed_failures:
            return False
        return None

    def next_wave(self, passes: int, failures: int) -> int:
        """How many more samples to send at once without sending one that cannot matter.

        Each sample of the wave is needed in the case where all the others go the other way:
        at most the passes still needed, and at most one more than the failures still allowed.
        """
        if passes + failures == 0 and self.needed == 0:
            return 1  # min_pass_rate 0 still looks at one sample
        if self.verdict(passes, failures) is not None:
            return 0
        remaining = self.repeat - passes - failures
        return min(remaining, self.needed - passes, self.allowed_failures - failures + 1)


def wilson(passes: int, samples: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate: honest at small sample counts."""
    if samples == 0:
        return 0.0, 1.0
    p = passes / samples
    denominator = 1 + z * z / samples
    centre = (p + z * z / (2 * samples)) / denominator
    margin = z * math.sqrt(p * (1 - p) / samples + z * z / (4 * samples * samples)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def rate_line(plan: Plan, passes: int, failures: int) -> str:
    """'pass rate 2/5 = 40% < min_pass_rate 60% (95% CI 12%-77%)', plus early stopping."""
    samples = passes + failures
    low, high = wilson(passes, samples)
    share = passes / samples if samples else 0.0
    compare = ">=" if share >= plan.min_pass_rate else "<"
    line = (
        f"pass rate {passes}/{samples} = {share:.0%} {compare} min_pass_rate "
        f"{plan.min_pass_rate:.0%} (95% CI {low:.0%}-{high:.0%})"
    )
    if samples < plan.repeat:
        line += f"; stopped after {samples} of {plan.repeat} samples: the outcome was decided"
    return line
