"""qpnn_hpc.inverse.chains: blocks of evaluation chains combine into one energy, error and
R-hat whatever their split; each block is seeded by the spec and its index alone."""
import numpy as np
import torch

from qpnn_hpc.inverse.chains import BlockStats, block_stats, combine
from qpnn_hpc.inverse.trial import TrialSpec, build_system


def _block(rng, K=2, W=4, D=1, h=50):
    return BlockStats(chain_energy=rng.normal(size=(K, W)), half_mean=rng.normal(size=(K, 2 * W, D)),
                      half_var=rng.uniform(0.5, 1.5, size=(K, 2 * W, D)), half_len=h,
                      acceptance=rng.uniform(0.4, 0.6, size=K))


def test_combine_equals_the_formulas_over_all_chains():
    rng = np.random.default_rng(1)
    a, b = _block(rng), _block(rng)
    energy, err, rhat, acc = combine([a, b])
    ce = np.concatenate([a.chain_energy, b.chain_energy], axis=1)  # 8 chains per trial
    np.testing.assert_allclose(energy, ce.mean(1), rtol=1e-15)
    np.testing.assert_allclose(err, ce.std(1, ddof=1) / np.sqrt(8), rtol=1e-15)
    np.testing.assert_allclose(acc, (a.acceptance + b.acceptance) / 2, rtol=1e-15)
    assert rhat.shape == (2,) and np.all(rhat > 0)


class ExactPotential(torch.nn.Module):
    """U = V of the system, batched over K trials (input (K, N, D) -> (K, N))."""

    def __init__(self, system):
        super().__init__()
        self.system = system

    def forward(self, x):
        return self.system.potential(x)


def test_blocks_are_seeded_by_spec_and_index_and_give_the_exact_energy():
    spec = TrialSpec.from_dict({"system": {"name": "harmonic_oscillator", "levels": [0]},
                                "sampler": {"chains": 64, "burn_in": 100},
                                "eval": {"energy_sweeps": 40}})
    system = build_system(spec)
    model = ExactPotential(system)
    b0 = block_stats(system, model, [spec], 0, torch.float64, "cpu")
    again = block_stats(system, model, [spec], 0, torch.float64, "cpu")
    b1 = block_stats(system, model, [spec], 1, torch.float64, "cpu")
    np.testing.assert_array_equal(b0.half_mean, again.half_mean)
    assert not np.array_equal(b0.half_mean, b1.half_mean)
    # with the exact potential every local energy is E = 0.5 Ha (zero variance)
    energy, err, _, _ = combine([b0, b1])
    np.testing.assert_allclose(energy, [0.5], atol=1e-9)
    assert err[0] < 1e-9
