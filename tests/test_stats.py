"""qpnn_hpc.stats: the sample std and the split R-hat, against direct formulas."""
import numpy as np

from qpnn_hpc.stats import rhat_from_stats, sample_std


def test_sample_std_is_ddof_one_and_nan_below_two():
    assert sample_std([1.0, 3.0]) == np.sqrt(2.0)
    assert np.isnan(sample_std([1.0]))


def test_rhat_near_one_for_one_distribution_and_large_for_shifted_chains():
    rng = np.random.default_rng(0)
    n = 500
    same = rng.normal(size=(n, 8, 1))  # (samples, half chains, D)
    r = rhat_from_stats(same.mean(0), same.var(0, ddof=1), n)
    assert abs(r - 1) < 0.02  # 8 half chains of 500 iid samples: R-hat - 1 ~ 1/n
    shifted = same + np.arange(8)[None, :, None]
    assert rhat_from_stats(shifted.mean(0), shifted.var(0, ddof=1), n) > 2
