"""Paired comparisons of two models scored on the same test videos (issue 18's statistics).

Every model of a study is evaluated on the same videos, so two models' results pair up video by
video: only the videos on which they disagree (one right, the other wrong) carry information
about which is better. Here:

- `mcnemar`: the exact McNemar test, a two-sided binomial test of the discordant counts;
- `paired_over_seeds`: the difference over several training seeds with a standard error that
  counts test sampling and seed spread together, which the study's rule judges;
- `sample_needed` / `videos_for_margin`: the test videos or seeds a finding needs (power
  calculations the report prints);
- `trend`: a weighted slope of a paired difference across levels (camera motion).

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


Z95 = NormalDist().inv_cdf(0.975)  # a 95% interval is d +- Z95 * SE
Z_POWER = Z95 + NormalDist().inv_cdf(0.8)  # SE a two-sided 5% test needs for 80% power: |d| / this


@dataclass(frozen=True)
class Paired:
    """A - B in accuracy points over S seeds on N paired test videos (`paired_over_seeds`)."""

    difference: float  # mean over seeds of the per-seed paired differences
    per_seed: tuple[float, ...]
    mcnemar_p: tuple[float, ...]  # exact McNemar p of each seed
    se_videos: float  # test sampling: sd over videos of the seed-averaged difference / sqrt(N)
    se_seeds: float  # training noise: sd over seeds of the per-seed differences / sqrt(S)
    videos: int
    seeds: int

    @property
    def se(self) -> float:
        return math.hypot(self.se_videos, self.se_seeds)

    @property
    def margin(self) -> float:
        """Half width of the 95% interval: the difference counts when |d| >= this."""
        return Z95 * self.se


def paired_over_seeds(a_by_seed, b_by_seed) -> Paired:
    """A vs B from per-video scores (0/1 correctness), one sequence per seed, the videos in the
    same order in every sequence. The standard error adds the two noises: which test videos
    were drawn (the per-video differences averaged over seeds, paired) and which seed trained
    the models (the spread of the per-seed differences; 0 with one seed). Adding them is a
    little conservative, as the per-seed spread also holds some test sampling."""
    pairs = [_pairs(a, b) for a, b in zip(a_by_seed, b_by_seed, strict=True)]
    if not pairs or len({len(a) for a, _ in pairs}) != 1 or len(pairs[0][0]) < 2:
        raise ValueError("expected one sequence per seed, >= 2 videos, the same videos in each")
    diffs = np.array([a.astype(np.float64) - b for a, b in pairs])  # (S, N): +1, 0 or -1
    per_seed = 100 * diffs.mean(axis=1)
    seeds, videos = diffs.shape
    se_seeds = float(per_seed.std(ddof=1) / math.sqrt(seeds)) if seeds > 1 else 0.0
    return Paired(
        difference=float(per_seed.mean()),
        per_seed=tuple(float(d) for d in per_seed),
        mcnemar_p=tuple(mcnemar(a, b).p_value for a, b in pairs),
        se_videos=float(100 * diffs.mean(axis=0).std(ddof=1) / math.sqrt(videos)),
        se_seeds=se_seeds,
        videos=videos,
        seeds=seeds,
    )


def sample_needed(p: Paired) -> tuple[int | None, int | None]:
    """(test videos at p's seeds, seeds at p's videos) that give a two-sided 5% test 80% power
    at the observed difference, each with the other held; None where no number of that one
    alone is enough (or the difference is 0). The variances scale as 1/N and 1/S."""
    target = (p.difference / Z_POWER) ** 2  # the SE² the test needs
    var_videos, var_seeds = p.se_videos**2 * p.videos, p.se_seeds**2 * p.seeds
    videos = seeds = None
    if target > p.se_seeds**2 and var_videos > 0:
        videos = math.ceil(var_videos / (target - p.se_seeds**2))
    if target > p.se_videos**2 and var_seeds > 0:
        seeds = math.ceil(var_seeds / (target - p.se_videos**2))
    return videos, seeds


def sample_scale(se: float, difference: float) -> float | None:
    """How many times the present sample (test videos and seeds together, so every SE shrinks
    as 1/sqrt) a two-sided 5% test needs for 80% power at `difference`; None when it is 0."""
    return (se * Z_POWER / difference) ** 2 if difference else None


def videos_for_margin(p: Paired, margin: float) -> int | None:
    """Test videos (at p's seeds) that bring the 95% interval's half width to `margin` points;
    None when the seed spread alone is wider."""
    target = (margin / Z95) ** 2 - p.se_seeds**2
    return math.ceil(p.se_videos**2 * p.videos / target) if target > 0 else None


@dataclass(frozen=True)
class Trend:
    """Least-squares slope of a paired difference against a level, each level weighted by
    1 / SE² (the levels are separate data sets and trainings, taken as independent)."""

    slope: float  # points per unit of level
    se: float

    @property
    def margin(self) -> float:
        return Z95 * self.se


def trend(levels, differences: list[Paired]) -> Trend:
    x = np.asarray(levels, dtype=np.float64)
    y = np.array([p.difference for p in differences])
    # a level whose two models never disagree has SE 0: floor it at the smallest non-zero one
    se = np.array([p.se for p in differences])
    se = np.maximum(se, se[se > 0].min() if (se > 0).any() else 1.0)
    w = 1 / se**2
    xc = x - (w * x).sum() / w.sum()
    spread = (w * xc**2).sum()
    if len(x) < 2 or spread == 0:
        raise ValueError("a trend needs at least two different levels")
    return Trend(slope=float((w * xc * y).sum() / spread), se=float(1 / math.sqrt(spread)))
