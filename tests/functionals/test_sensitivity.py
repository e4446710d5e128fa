"""Seed 002's sensitivity analysis (eqs. 5-7) on analytic examples and on small exact atoms."""
import math

import numpy as np
import pytest

from qpnn_hpc.config import ConfigError
from qpnn_hpc.functionals import sensitivity as S
from qpnn_hpc.functionals.train import Profiles

from tests.functionals.test_train import solved

X = np.linspace(-7, 7, 169)
DX = 14 / 168


def test_constant_shift_has_no_total_variation():
    V = -1.3 / (np.abs(X) + 0.8)
    assert S.total_variation(V, V + 0.1) == pytest.approx(0, abs=1e-12)
    assert S.total_variation(V, V) == 0


def test_total_variation_of_simple_differences():
    V = -1 / (np.abs(X) + 1)
    assert S.total_variation(V + 0.25 * X, V) == pytest.approx(0.25 * 14, rel=1e-12)    # slope * length
    bump = 0.3 * np.exp(-X**2)                                      # up 0.3 and down again
    assert S.total_variation(V + bump, V) == pytest.approx(2 * 0.3, rel=1e-9)
    assert S.total_variation(np.stack([V + bump, V]), np.stack([V, V])) == pytest.approx([0.6, 0.0], abs=1e-9)


def test_l2_distance_is_eq_5():
    a = 0.01 * np.exp(-X**2)                                        # integral of a^2 = 1e-4 sqrt(pi / 2)
    assert S.l2_distance(a, 0 * a, DX) == pytest.approx(math.sqrt(1e-4 * math.sqrt(math.pi / 2)), rel=1e-9)
    assert S.l2_distance(np.full(169, 0.2), np.full(169, 0.1), DX) == pytest.approx(0.1 * math.sqrt(DX * 169))


def test_sensitivity_is_eq_7():
    assert S.sensitivity(-0.9, -1.118, 1e-3) == pytest.approx(218)   # the seed's Fig. 10 example
    assert S.sensitivity(1.0, 2.0, 0.0) == math.inf


def test_pairs():
    all_pairs = S.pairs(5)
    assert all_pairs.shape == (10, 2) and np.all(all_pairs[:, 0] < all_pairs[:, 1])
    assert len({tuple(p) for p in all_pairs}) == 10
    some = S.pairs(100, 619, seed=1)
    assert some.shape == (619, 2) and len({tuple(p) for p in some}) == 619
    assert np.all(some[:, 0] < some[:, 1]) and some.max() < 100
    assert np.array_equal(some, S.pairs(100, 619, seed=1)) and not np.array_equal(some, S.pairs(100, 619, seed=2))
    with pytest.raises(ConfigError, match="^count: "):
        S.pairs(4, 7)
    with pytest.raises(ConfigError, match="^n_systems: "):
        S.pairs(1)


def synthetic():
    """Three systems: a well, the same well shifted by 0.2 Ha (same density), a deeper well."""
    V0 = -1 / (np.abs(X) + 1)
    n0 = np.exp(-np.abs(X))
    n0 /= n0.sum() * DX
    n2 = np.exp(-2 * np.abs(X))
    n2 /= n2.sum() * DX
    split = {"V": np.stack([V0, V0 + 0.2, 2 * V0]), "n1": np.stack([n0, n0, n2]),
             "E1": np.array([-0.5, -0.3, -1.2]), "T": np.array([0.1, 0.1, 0.3]),
             "A": np.array([0.04, -0.16, 0.3]), "Eg": np.array([0.46, 0.46, 0.9]), "E_V": np.zeros(3)}
    return Profiles(X, split, split)


def test_analyse_over_pairs():
    res = S.analyse(synthetic(), "train")
    assert res.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert res.tv[0] == pytest.approx(0, abs=1e-12) and res.l2[0] == 0
    assert res.sensitivity["E"][0] == math.inf and math.isnan(res.sensitivity["T"][0])   # 0 / 0
    l2 = S.l2_distance(synthetic().train["n1"][0], synthetic().train["n1"][2], DX)
    assert res.l2[1] == pytest.approx(l2)
    assert res.sensitivity["E"][1] == pytest.approx(0.7 / l2) and res.sensitivity["Eg"][2] == pytest.approx(0.44 / l2)
    # the pair with equal densities is left out of the medians
    assert S.median_ratio(res, "E", "T") == pytest.approx(np.median([0.7, 0.9]) / np.median([0.2, 0.2]))
    with pytest.raises(ConfigError, match="^property: "):
        S.median_ratio(res, "E", "U")


def test_gauge_dependent_density_functionals_are_more_sensitive(tmp_path):
    """Exact atoms (3 x 3 training grid): E[n] and A[n] far more sensitive than T[n], Eg[n]."""
    res = S.analyse(solved("atoms", 3, tmp_path), "train")
    assert res.tv.shape == res.l2.shape == (36,)
    assert S.median_ratio(res, "E", "T") > 3 and S.median_ratio(res, "A", "Eg") > 3
