"""Statistics across training seeds: pure functions on numbers, no files.

A claim such as "duplex reaches a lower FID than StyleGAN2" is decided on the values of
several independently trained runs per model (one per training seed). The noise that
matters is the spread between those runs: GAN training amplifies tiny differences, so
retraining moves FID several times more than resampling one network does (Dufour et al.,
"The FID Lottery"). Sampling noise is estimated apart and reported as its own component.

The interval of a difference of means is Welch's t interval with Student quantiles. We
chose it over a bootstrap over seeds because at the sample sizes a reproduction can
afford (n = 2 to 10 seeds) a bootstrap resample of n = 3 values has only 10 distinct
outcomes and its percentile interval is far too narrow (it cannot account for the
uncertainty of the spread itself), whereas Welch's interval widens with the Student
quantile of the small degrees of freedom, keeps close to its nominal coverage for
roughly normal seed-to-seed variation (tests/test_statistics.py checks about 95 % by
simulation) and does not assume the two models vary alike (they do not: the GANformer
runs spread about twice as much as StyleGAN2's in our measurements).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

LEVEL = 0.95          # confidence of the intervals
POWER = 0.80          # the power "seeds needed" aims at
MAX_SEEDS = 1000      # beyond this, "seeds needed" says "more than MAX_SEEDS"

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (None for one value) and count of some runs."""
    mean: float
    sd: float | None
    n: int


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarize")
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Summary(mean, sd, n)


@dataclass(frozen=True)
class Difference:
    """mean(worse) - mean(better): positive when the data lean the claimed way.

    `low`, `high`: the LEVEL interval (None with fewer than two values on a side);
    `df`: Welch-Satterthwaite degrees of freedom; `p_improvement`: P(better < worse) over
    all pairs of runs, ties counting one half; `seeds_needed`: seeds per model for which a
    two-sided Welch test at 1 - LEVEL would detect a true difference of this size with
    POWER (None when there is no difference to detect, MAX_SEEDS + 1 for "more than").
    """
    estimate: float
    low: float | None
    high: float | None
    df: float | None
    p_improvement: float
    seeds_needed: int | None
    better: Summary
    worse: Summary


def welch_interval(better: Sequence[float], worse: Sequence[float],
                   level: float = LEVEL) -> tuple[float, float | None, float | None, float | None]:
    """(estimate, low, high, df) of mean(worse) - mean(better) by Welch's t."""
    a, b = summarize(better), summarize(worse)
    estimate = b.mean - a.mean
    if a.sd is None or b.sd is None:
        return estimate, None, None, None
    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    se = math.sqrt(va + vb)
    if se == 0.0:                 # identical runs on both sides: the difference is exact
        return estimate, estimate, estimate, math.inf
    df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return estimate, estimate - half, estimate + half, df


def prob_improvement(better: Sequence[float], worse: Sequence[float]) -> float:
    """P(X < Y) for X a run of `better` and Y a run of `worse`, over all pairs (ties 1/2):
    the Mann-Whitney U statistic divided by the number of pairs."""
    if not better or not worse:
        raise ValueError("no values to compare")
    wins = sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in better for y in worse)
    return wins / (len(better) * len(worse))


def power(n: int, diff: float, sd_a: float, sd_b: float, level: float = LEVEL) -> float:
    """Power of the two-sided Welch test with n runs per model, if the true difference is
    `diff` and the true spreads are sd_a, sd_b (noncentral t, Welch-Satterthwaite df)."""
    var = sd_a ** 2 + sd_b ** 2
    if var == 0.0:
        return 1.0 if diff != 0 else 0.0
    df = var ** 2 * (n - 1) / (sd_a ** 4 + sd_b ** 4)
    ncp = abs(diff) / math.sqrt(var / n)
    crit = stats.t.ppf(0.5 + level / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def seeds_needed(diff: float, sd_a: float | None, sd_b: float | None, target: float = POWER,
                 level: float = LEVEL) -> int | None:
    """The smallest n (>= 2) of runs per model at which power() reaches `target`, taking
    the observed difference and spreads as the truth (a plug-in estimate); None when it
    cannot be estimated (no spread measured) or there is no difference to detect."""
    if sd_a is None or sd_b is None or diff == 0:
        return None
    if power(2, diff, sd_a, sd_b, level) >= target:
        return 2
    lo, hi = 2, 4
    while power(hi, diff, sd_a, sd_b, level) < target:      # power grows with n
        if hi > MAX_SEEDS:
            return MAX_SEEDS + 1
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(mid, diff, sd_a, sd_b, level) >= target else (mid, hi)
    return hi


def difference(better: Sequence[float], worse: Sequence[float], level: float = LEVEL) -> Difference:
    """Everything a verdict on "`better` has lower values than `worse`" rests on."""
    a, b = summarize(better), summarize(worse)
    estimate, low, high, df = welch_interval(better, worse, level)
    return Difference(estimate, low, high, df, prob_improvement(better, worse),
                      seeds_needed(estimate, a.sd, b.sd, level=level), a, b)


def verdict(d: Difference) -> str:
    """supported when the interval excludes 0 in the claimed direction, not supported when
    it excludes 0 against the claim, otherwise (or with one run on a side) inconclusive."""
    if d.low is None or d.high is None:
        return INCONCLUSIVE
    if d.low > 0:
        return SUPPORTED
    if d.high < 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def log_ratio_interval(ratios: Sequence[float], level: float = LEVEL) -> tuple[float, float | None, float | None]:
    """(geometric mean, low, high) of positive ratios measured in pairs, by a one-sample t
    interval on their logarithms (for throughput ratios timed side by side)."""
    if not ratios or min(ratios) <= 0:
        raise ValueError("ratios must be positive")
    logs = [math.log(r) for r in ratios]
    s = summarize(logs)
    if s.sd is None:
        return math.exp(s.mean), None, None
    half = stats.t.ppf(0.5 + level / 2, s.n - 1) * s.sd / math.sqrt(s.n)
    return math.exp(s.mean), math.exp(s.mean - half), math.exp(s.mean + half)


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float | None, int]:
    """Pooled within-group standard deviation and its degrees of freedom, over the groups
    with two or more values (for the sampling noise: one group per trained network)."""
    ss, df = 0.0, 0
    for g in groups:
        if len(g) > 1:
            m = math.fsum(g) / len(g)
            ss += math.fsum((v - m) ** 2 for v in g)
            df += len(g) - 1
    return (math.sqrt(ss / df), df) if df else (None, 0)
