"""Per-group statistics of the padding table: mean, sample standard deviation, Welch interval.

The Student t quantile is computed here (scipy is not a dependency): the t CDF through the
regularized incomplete beta function (continued fraction, modified Lentz), inverted by
bisection. Welch's degrees of freedom are fractional, so a table of integer quantiles would
not do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "GroupStats",
    "group_stats",
    "mean",
    "sample_stdev",
    "student_t_cdf",
    "student_t_quantile",
    "welch_interval",
]


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        # Even then odd term of the fraction (Abramowitz & Stegun 26.5.8).
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            step = c * d
            result *= step
        if abs(step - 1.0) < 1e-15:
            break
    return result


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast on this side of the mean; use the symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, may be fractional) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t such that ``student_t_cdf(t, df) == p`` (e.g. t(0.975, 4) = 2.776).

    Args:
        p: probability in (0, 1).
        df: degrees of freedom, > 0, may be fractional (Welch).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    high = 1.0
    while student_t_cdf(high, df) < p:
        high *= 2.0
    low = 0.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of a non-empty sequence."""
    return math.fsum(values) / len(values)


def sample_stdev(values: Sequence[float]) -> float | None:
    """Sample standard deviation (divisor n - 1); None for fewer than two values."""
    if len(values) < 2:
        return None
    centre = mean(values)
    return math.sqrt(math.fsum((value - centre) ** 2 for value in values) / (len(values) - 1))


def welch_interval(sample: Sequence[float], reference: Sequence[float],
                   confidence: float = 0.95) -> tuple[float, float] | None:
    """Welch's t interval for ``mean(sample) - mean(reference)``; None when a side has < 2 values.

    Welch-Satterthwaite degrees of freedom; two samples without spread give the point itself.
    """
    if len(sample) < 2 or len(reference) < 2:
        return None
    difference = mean(sample) - mean(reference)
    var_a = sample_stdev(sample) ** 2 / len(sample)  # type: ignore[operator]
    var_b = sample_stdev(reference) ** 2 / len(reference)  # type: ignore[operator]
    standard_error = math.sqrt(var_a + var_b)
    if standard_error == 0.0:
        return difference, difference
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(sample) - 1)
                                 + var_b ** 2 / (len(reference) - 1))
    half_width = student_t_quantile(0.5 + confidence / 2.0, df) * standard_error
    return difference - half_width, difference + half_width


@dataclass(frozen=True)
class GroupStats:
    """One row of the table: the runs of one (arch, padding).

    Attributes:
        arch: architecture name without the ``pd`` prefix (``resnet50``).
        padding: zero, partial, reflect or replicate.
        bests: best metric (percent) of each run, in the order given.
        mean: mean of ``bests``.
        stdev: sample standard deviation of ``bests`` (None for one run).
        diff: ``mean`` minus the zero-padding group's mean of the same arch (None for the zero
            group itself or when that arch has no zero-padding run).
        interval: 95 % Welch interval of ``diff`` (None when either group has one run).
    """

    arch: str
    padding: str
    bests: tuple[float, ...]
    mean: float
    stdev: float | None
    diff: float | None
    interval: tuple[float, float] | None


def group_stats(arch: str, padding: str, bests: Sequence[float],
                zero_bests: Sequence[float] | None) -> GroupStats:
    """The statistics of one group against its arch's zero-padding group (``None``: no such)."""
    compare = padding != "zero" and zero_bests is not None
    return GroupStats(
        arch=arch,
        padding=padding,
        bests=tuple(bests),
        mean=mean(bests),
        stdev=sample_stdev(bests),
        diff=mean(bests) - mean(zero_bests) if compare else None,  # type: ignore[arg-type]
        interval=welch_interval(bests, zero_bests) if compare else None,  # type: ignore[arg-type]
    )
