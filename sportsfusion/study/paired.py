"""Paired comparisons of two models scored on the same test videos (issue 18's statistics).

Every model of a study is evaluated on the same videos, so two models' results pair up video by
video: only the videos on which they disagree (one right, the other wrong) carry information
about which is better. Here:

- `mcnemar`: the exact McNemar test, a two-sided binomial test of the discordant counts;
- `paired_bootstrap`: the difference in accuracy with a percentile interval, resampling videos
  (the pairs) with a fixed seed, so the interval is reproducible;
- `videos_needed`: how many test videos a McNemar test needs to detect a difference `d` at the
  observed rate of discordant videos (normal approximation, Connor 1987), which the report
  quotes for every finding that stays inconclusive.

Inputs are per-video correctness, 0/1 (or bool) sequences in the same video order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class McNemar:
    only_a: int  # videos A gets right and B gets wrong
    only_b: int  # videos B gets right and A gets wrong
    p_value: float  # exact two-sided


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two equal-length 1-D sequences, got {a.shape} and {b.shape}")
    return a, b


def mcnemar(a, b) -> McNemar:
    """Exact McNemar test of "A and B are equally accurate" on paired per-video results."""
    a, b = _pairs(a, b)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return McNemar(0, 0, 1.0)
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled (the distribution is symmetric), capped at 1.
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return McNemar(only_a, only_b, min(1.0, 2 * tail))


def paired_bootstrap(a, b, *, resamples: int = 10_000, level: float = 0.95, seed: int = 0):
    """(difference in accuracy A - B in points, interval low, interval high): videos resampled
    with replacement, pairs kept together; the percentile interval at `level`."""
    a, b = _pairs(a, b)
    diff = a.astype(np.float64) - b.astype(np.float64)  # per video: +1, 0 or -1
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[picks].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return 100 * float(diff.mean()), 100 * float(low), 100 * float(high)


def videos_needed(
    discordant: float, difference: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Test videos a two-sided McNemar test at `alpha` needs to detect an accuracy difference
    `difference` (a fraction, e.g. 0.04) with `power`, when a fraction `discordant` of videos
    has the two models disagree. None when the difference is 0 or impossible at that rate."""
    d, pd = abs(difference), discordant
    if d == 0 or pd <= 0 or d > pd:
        return None
    z = NormalDist()
    za, zb = z.inv_cdf(1 - alpha / 2), z.inv_cdf(power)
    return math.ceil((za * math.sqrt(pd) + zb * math.sqrt(pd - d * d)) ** 2 / (d * d))
