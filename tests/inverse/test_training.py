"""qpnn_hpc.inverse.training: the schedule, per-trial clipping, divergence detection, and
that K batched trials follow the paths they would follow alone."""
import math

import torch

from qpnn_hpc.inverse.training import TrainConfig, clip_per_trial, first_nonfinite, fit, learning_rate


class Quadratic(torch.nn.Module):
    """K independent parameters w_k with loss_k = (w_k - target_k)^2."""

    def __init__(self, start):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64).reshape(-1, 1))


def _fit(start, target, cfg):
    m = Quadratic(start)
    t = torch.tensor(target, dtype=torch.float64).reshape(-1, 1)
    curve = fit(m, lambda x: ((m.w - t) ** 2).sum(-1), lambda: None, cfg)
    return m.w.detach().flatten(), curve


def test_cosine_schedule_ends_at_lr_final():
    cfg = TrainConfig(epochs=11, lr=1e-2, lr_final=1e-4)
    assert learning_rate(cfg, 0) == 1e-2 and math.isclose(learning_rate(cfg, 10), 1e-4)
    assert math.isclose(learning_rate(cfg, 5), 0.5 * (1e-2 + 1e-4))
    assert learning_rate(TrainConfig(lr=3e-3), 7) == 3e-3


def test_fit_converges_and_batched_trials_are_independent():
    cfg = TrainConfig(epochs=400, lr=0.05, clip_norm=1.0)
    w, curve = _fit([0.0, 5.0, -3.0], [1.0, 2.0, 0.5], cfg)
    assert torch.allclose(w, torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), atol=1e-3)
    assert curve.shape == (3, 400) and curve[:, -1].max() < 1e-5
    alone, _ = _fit([5.0], [2.0], cfg)  # trial 1 alone: the same path, bit for bit
    assert w[1] == alone[0]


def test_clip_per_trial_uses_each_trials_norm():
    m = Quadratic([0.0, 0.0])
    m.w.grad = torch.tensor([[3.0], [0.5]], dtype=torch.float64)
    clip_per_trial([m.w], 1.0)
    torch.testing.assert_close(m.w.grad.flatten(), torch.tensor([1.0, 0.5], dtype=torch.float64), rtol=1e-11, atol=0)


def test_first_nonfinite():
    c = torch.tensor([[1.0, 2.0, 3.0], [1.0, float("nan"), 2.0], [float("inf"), 1.0, 1.0]])
    assert first_nonfinite(c) == [None, 1, 0]
