"""Statistics shared by every report and kind: the sample standard deviation over
trials and the split R-hat of Markov chains. Imports nothing from the package.
"""
from __future__ import annotations

import numpy as np


def sample_std(x) -> float:
    """The sample standard deviation (ddof = 1) of the trials; NaN for fewer than two."""
    return float(np.std(x, ddof=1)) if len(x) > 1 else np.nan


def rhat_from_stats(half_mean, half_var, n: int) -> float:
    """Split R-hat (Gelman-Rubin; Vehtari et al. 2021 without ranks) from the means and
    unbiased variances (2W, D) of 2W half chains of n samples each; the largest over D.
    Values near 1 (< 1.01-1.05) indicate mixed chains."""
    half_mean, half_var = np.asarray(half_mean), np.asarray(half_var)
    W = half_var.mean(0)
    B = n * half_mean.var(0, ddof=1)
    var_hat = (n - 1) / n * W + B / n
    return float(np.sqrt(var_hat / W).max())
