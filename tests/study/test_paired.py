"""The paired statistics against hand computations on small tables."""

import math

import numpy as np
import pytest

from sportsfusion.study.paired import mcnemar, paired_bootstrap, videos_needed


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


def test_paired_bootstrap_difference_and_a_reproducible_interval():
    a, b = table(both=50, only_a=15, only_b=5, neither=30)  # 100 videos: A 65%, B 55%
    diff, low, high = paired_bootstrap(a, b, resamples=4000, seed=1)
    assert diff == pytest.approx(10.0)
    assert low < diff < high
    assert (diff, low, high) == paired_bootstrap(a, b, resamples=4000, seed=1)
    # The interval's half width is close to the normal approximation of the paired difference:
    # sd of per-video differences (+1 x15, -1 x5, 0 x80) over sqrt(100), times 1.96.
    d = np.array([1] * 15 + [-1] * 5 + [0] * 80, dtype=float)
    half = 100 * 1.96 * d.std() / math.sqrt(len(d))
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)


def test_videos_needed_by_hand():
    # Connor's formula n = (z_a sqrt(pd) + z_b sqrt(pd - d^2))^2 / d^2, z_a 1.95996, z_b 0.84162:
    # pd 0.3, d 0.04 -> (1.0735 + 0.4598)^2 / 0.0016 = 1469.4, so 1470 videos
    pd, d = 0.3, 0.04
    assert videos_needed(pd, d) == 1470
    want = (1.959964 * math.sqrt(pd) + 0.841621 * math.sqrt(pd - d * d)) ** 2 / d**2
    assert videos_needed(pd, d) == math.ceil(want)
    assert videos_needed(pd, -d) == videos_needed(pd, d)
    assert videos_needed(0.3, 0) is None and videos_needed(0.02, 0.04) is None


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="equal-length"):
        mcnemar([1, 0], [1])
