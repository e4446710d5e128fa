"""The divergence gate (qpnn_hpc.inverse.divergence): a blown-up trial is failed with the
reason, a healthy short one stays done. Thresholds and their measured margins are in the
module docstring (healthy L_end/L_start <= 18.9 against the limit 1000)."""
import math

import numpy as np
import pytest
import torch

from qpnn_hpc.inverse import divergence
from qpnn_hpc.inverse.systems import make_system
from qpnn_hpc.inverse.trial import TrialSpec, run_trial


def _spec(lr, system=None, method="qpnn", epochs=40):
    return TrialSpec.from_dict({
        "system": system or {"name": "harmonic_oscillator", "levels": [0], "half_width": 4.0},
        "method": method, "dtype": "float64", "seed": 0,
        "model": {"widths": [16, 16], "init_scale": 1.0},
        "train": {"epochs": epochs, "points": 200, "lr": lr},
        "sampler": {"chains": 64, "burn_in": 50, "thin": 2},
        "eval": {"eps_points": 200, "energy_sweeps": 8, "uniform_energy_points": 500, "grid_points": 21}})


def test_loss_growth_threshold_is_the_stated_factor():
    flat = np.ones(100)
    assert divergence.loss_growth(flat) is None
    grown = np.concatenate([np.ones(50), np.full(50, 0.999 * divergence.LOSS_GROWTH)])
    assert divergence.loss_growth(grown) is None
    grown[50:] = 1.001 * divergence.LOSS_GROWTH
    reason = divergence.loss_growth(grown)
    assert reason is not None and reason.startswith("diverged: loss grew from 1 to 1e+03")


def test_window_of_the_ho_ground_state_holds_its_energy_and_potential():
    """U* = E* + k/2 is V = x^2/2 with E* = 1/2 (anchor at 0, V(0) = 0): the 1-99% weighted
    range of x^2/2 under |psi|^2 is [~0, 1.66] Ha (x^2 ~ chi^2 / 2), so the window is
    ~[-5.0, 6.6] Ha (4096 points: measured [-5.13, 6.84])."""
    system = make_system("harmonic_oscillator", {"levels": [0], "half_width": 4.0})
    x = (torch.rand(4096, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 0.5) * 8
    lo, hi = divergence.physical_window(system, x, (0.0,), 0.0)
    assert -5.6 < lo < -4.6 and 6.1 < hi < 7.4
    w = np.exp(-x[:, 0].numpy() ** 2)
    assert divergence.out_of_window(0.5, 0.5 * x[:, 0].numpy() ** 2, w, (lo, hi)) is None
    assert "energy 20 Ha" in divergence.out_of_window(20.0, 0.5 * x[:, 0].numpy() ** 2, w, (lo, hi))
    assert "learned U spans" in divergence.out_of_window(0.5, 0.5 * x[:, 0].numpy() ** 2 + 50, w, (lo, hi))


@pytest.mark.parametrize("lr", [1e3, 1e10])
def test_finite_blow_up_is_failed_with_the_reason(lr):
    """Issue 14: lr = 1e3 and 1e10 finished 'done' with E of 1e4 to 1e11 Ha."""
    r = run_trial(_spec(lr))
    assert r.status == "failed" and r.reason.startswith("diverged:"), (r.energy, r.reason)


@pytest.mark.parametrize("system", [None, {"name": "hydrogen"}])
def test_healthy_short_training_stays_done(system):
    r = run_trial(_spec(3e-3, system, method="qpnn_ms"))
    assert r.status == "done" and r.reason == "" and math.isfinite(r.energy)
