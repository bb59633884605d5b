"""The paired statistics against hand computations on small tables."""

import math

import numpy as np
import pytest

from sportsfusion.study.paired import (
    Paired,
    mcnemar,
    paired_over_seeds,
    sample_needed,
    trend,
    videos_for_margin,
)


def table(both: int, only_a: int, only_b: int, neither: int):
    """Per-video correctness of A and B with the given 2x2 counts."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return a, b


def test_mcnemar_exact_by_hand():
    # 10 discordant videos, 8 for A and 2 for B: P(X <= 2 | n=10, 1/2) = (1 + 10 + 45) / 1024.
    result = mcnemar(*table(both=30, only_a=8, only_b=2, neither=5))
    assert (result.only_a, result.only_b) == (8, 2)
    assert result.p_value == pytest.approx(2 * 56 / 1024)
    # symmetric in A and B; ties and no disagreement give p = 1
    assert mcnemar(*reversed(table(30, 8, 2, 5))).p_value == pytest.approx(2 * 56 / 1024)
    assert mcnemar(*table(10, 3, 3, 1)).p_value == 1.0
    assert mcnemar(*table(10, 0, 0, 4)).p_value == 1.0


def test_mcnemar_one_sided_extreme():
    # 6 discordant, all for A: p = 2 * (1/2)^6
    assert mcnemar(*table(0, 6, 0, 0)).p_value == pytest.approx(2 / 64)


Z95, Z_POWER = 1.959964, 1.959964 + 0.841621  # 95% two-sided; 80% power at 5%


def test_paired_over_seeds_by_hand():
    # seed 0: A right on videos 0, 1, 3, B on 0 -> differences 0, 1, 0, 1: +50 points
    # seed 1: A right on 0, 2, 3, B on 2, 3    -> differences 1, 0, 0, 0: +25 points
    p = paired_over_seeds([[1, 1, 0, 1], [1, 0, 1, 1]], [[1, 0, 0, 0], [0, 0, 1, 1]])
    assert p.per_seed == (50.0, 25.0) and p.difference == 37.5
    assert (p.videos, p.seeds) == (4, 2)
    # per video, averaged over seeds: 0.5, 0.5, 0, 0.5; sd (n-1) 0.25; / sqrt(4) -> 12.5 points
    assert p.se_videos == pytest.approx(12.5)
    # per seed 50 and 25: sd (n-1) 17.678; / sqrt(2) -> 12.5 points
    assert p.se_seeds == pytest.approx(12.5)
    assert p.se == pytest.approx(math.hypot(12.5, 12.5))
    assert p.margin == pytest.approx(Z95 * math.hypot(12.5, 12.5), rel=1e-6)
    # exact McNemar per seed: 2 vs 0 discordant -> 2 * 1/4; 1 vs 0 -> 2 * 1/2
    assert p.mcnemar_p == pytest.approx((0.5, 1.0))
    # the power calculation: SE^2 must reach (37.5 / 2.8016)^2 = 179.17; the video part is
    # 625 / N (156.25 at N = 4), the seed part 312.5 / S (156.25 at S = 2):
    # N = 625 / (179.17 - 156.25) = 27.3 -> 28 videos; S = 312.5 / 22.92 = 13.6 -> 14 seeds
    target = (37.5 / Z_POWER) ** 2
    want = (math.ceil(625 / (target - 156.25)), math.ceil(312.5 / (target - 156.25)))
    assert sample_needed(p) == want == (28, 14)
    # a 40-point margin: (40 / 1.96)^2 - 156.25 = 260.24 -> 625 / 260.24 = 2.4 -> 3 videos
    assert videos_for_margin(p, 40.0) == 3
    assert videos_for_margin(p, 20.0) is None  # the seed part alone is 24.5 points wide


def test_one_seed_is_the_plain_paired_difference():
    a, b = table(both=50, only_a=15, only_b=5, neither=30)  # 100 videos: A 65%, B 55%
    p = paired_over_seeds([a], [b])
    d = np.array([1] * 15 + [-1] * 5 + [0] * 80, dtype=float)
    assert p.difference == pytest.approx(10.0) and p.se_seeds == 0.0
    assert p.se_videos == pytest.approx(100 * d.std(ddof=1) / 10)
    assert p.mcnemar_p == (mcnemar(a, b).p_value,)
    videos, seeds = sample_needed(p)
    assert seeds is None  # one seed: no seed spread to scale
    assert videos == math.ceil((100 * d.std(ddof=1)) ** 2 / (10 / Z_POWER) ** 2)
    assert sample_needed(paired_over_seeds([a], [a])) == (None, None)  # no difference at all


def test_trend_by_hand():
    def level(d, se):
        return Paired(d, (d,), (1.0,), se, 0.0, 100, 1)

    # equal SEs: the ordinary least-squares slope of 6, 4, 1 on 0, 1, 2 is -5 / 2
    t = trend([0, 1, 2], [level(6, 1.0), level(4, 1.0), level(1, 1.0)])
    assert t.slope == pytest.approx(-2.5) and t.se == pytest.approx(1 / math.sqrt(2))
    # a precise level pulls the line: weights 1/SE^2 = 100, 1, 1
    t = trend([0, 1, 2], [level(6, 0.1), level(4, 1.0), level(1, 1.0)])
    w, x, y = np.array([100, 1, 1]), np.array([0, 1, 2]), np.array([6, 4, 1])
    xc = x - (w * x).sum() / w.sum()
    assert t.slope == pytest.approx((w * xc * y).sum() / (w * xc**2).sum())
    with pytest.raises(ValueError, match="two different levels"):
        trend([1, 1], [level(1, 1.0), level(2, 1.0)])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="equal-length"):
        mcnemar([1, 0], [1])
    with pytest.raises(ValueError, match="one sequence per seed"):
        paired_over_seeds([[1, 0], [1, 0, 1]], [[1, 0], [1, 0, 1]])
