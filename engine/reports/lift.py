"""Two proportions and their difference, with 95% confidence intervals.

Each arm's rate gets a Wilson score interval (Wilson 1927), which stays inside [0, 1] and
behaves at 0 and n successes, unlike the textbook ``p ± 1.96·√(p(1−p)/n)``. The difference
of two independent rates gets Newcombe's hybrid score interval (Newcombe 1998, "Interval
estimation for the difference between independent proportions", method 10), built from the
two Wilson intervals: for the difference d = p₁ − p₂,

    lower = d − √((p₁ − l₁)² + (u₂ − p₂)²)
    upper = d + √((u₁ − p₁)² + (p₂ − l₂)²)

Newcombe's own example, 56/70 against 48/80, gives 0.0524 to 0.3339 (tests/reports/test_effect.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
MIN_ARM = 20  # below this many customers in an arm, the report says "not enough data"


@dataclass(frozen=True)
class Rate:
    met: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.met / self.n if self.n else None


def wilson(met: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``met`` out of ``n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    if not 0 <= met <= n:
        raise ValueError(f"{met} successes out of {n}")
    p = met / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at 0 or n successes the bound is exactly 0 or 1; rounding must not move it
    low = 0.0 if met == 0 else max(0.0, centre - half)
    high = 1.0 if met == n else min(1.0, centre + half)
    return low, high


def newcombe(treated: Rate, control: Rate, z: float = Z95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for ``treated.rate − control.rate``."""
    a, b = wilson(treated.met, treated.n, z), wilson(control.met, control.n, z)
    if a is None or b is None:
        return None
    p1, p2 = treated.met / treated.n, control.met / control.n
    (l1, u1), (l2, u2) = a, b
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


@dataclass(frozen=True)
class Lift:
    difference: float  # treated rate − holdout rate, in [−1, 1]
    ci95: tuple[float, float]
    relative: float | None  # difference / holdout rate; None when the holdout rate is 0


def lift(treated: Rate, control: Rate) -> Lift | None:
    ci = newcombe(treated, control)
    if ci is None:
        return None
    p1, p2 = treated.met / treated.n, control.met / control.n
    return Lift(p1 - p2, ci, (p1 - p2) / p2 if p2 > 0 else None)


def verdict(treated: Rate, control: Rate | None, found: Lift | None) -> str:
    """``no_holdout``, ``not_enough_data``, ``lift`` (CI above 0), ``harm`` (CI below 0) or
    ``no_clear_effect`` (CI spans 0)."""
    if control is None:
        return "no_holdout"
    if found is None or treated.n < MIN_ARM or control.n < MIN_ARM:
        return "not_enough_data"
    low, high = found.ci95
    if low > 0:
        return "lift"
    if high < 0:
        return "harm"
    return "no_clear_effect"
