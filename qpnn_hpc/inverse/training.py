"""Training loop for K batched, independent trials.

Adam with (L2) weight decay, gradient clipping per trial, a cosine learning-rate
decay, fresh points every ``resample_every`` epochs. Independence of the K trials:
Adam and weight decay act element-wise, and clipping uses each trial's own
gradient norm (:func:`clip_per_trial`), so trial k follows exactly the path it
would follow alone.

Restarts (``restarts = R``): each trial trains R starts (initial weights and points from
the trial's spec and the start number, :func:`restart_stream`) in the same batch, and
keeps the one with the lowest final training loss (:func:`final_loss`: the median of the
last 5% of epochs, the loss of seed 000 eq. 4 / seed 001 eq. 7 on fresh points, never a
reference energy or potential). Why: on Ne's table as it was grafted before 2026-11-30
(ln rho blended over [1.0, 2.5] bohr), its radial QPNN sometimes ended with a slope error
past the blend, U - v_eff rising by 0.014 Ha over [2.8, 4.5] bohr (eq. 10 +11 mHa); that
trial's final loss was 4.1e-3 Ha^2 against 1.6e-3 - 2.4e-3 for the four others of its
batch, which were within 2.9 mHa. (On the tables grafted since, Ne needs no restarts:
jobs/atoms.toml.) Cost: R times the training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from qpnn_hpc.config import check, field


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(2000, help="optimisation steps (one batch of points per epoch)")
    points: int = field(1000, help="points per epoch (uniform for qpnn, Metropolis otherwise)")
    resample_every: int = field(1, help="epochs between fresh batches of points")
    lr: float = field(1e-3, help="Adam learning rate")
    lr_final: Optional[float] = field(None, help="learning rate at the last epoch (cosine decay); none: constant")
    weight_decay: float = field(0.0, help="L2 weight decay (seed 000: 1e-4)")
    clip_norm: Optional[float] = field(1.0, help="per-trial gradient-norm clip; none: no clipping")
    restarts: int = field(1, omit_default=True,
                          help="starts per trial, trained as one batch; the one with the lowest final training "
                               "loss (median of the last 5% of epochs) is kept; 1: a single start")

    def __post_init__(self):
        check(self.epochs > 0, "train.epochs", f"must be > 0, got {self.epochs}")
        check(self.points > 0, "train.points", f"must be a positive number of points, got {self.points}")
        check(self.resample_every > 0, "train.resample_every", "must be > 0")
        check(self.lr > 0, "train.lr", "must be > 0")
        check(self.lr_final is None or self.lr_final > 0, "train.lr_final", "must be > 0")
        check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        check(self.clip_norm is None or self.clip_norm > 0, "train.clip_norm", "must be > 0")
        check(isinstance(self.restarts, int) and self.restarts >= 1, "train.restarts",
              f"must be an integer >= 1 (1: no restarts), got {self.restarts!r}")


def clip_per_trial(params, max_norm: float) -> None:
    """Scale each trial's gradient (slices [k] of every parameter) to norm <= max_norm."""
    sq = None
    for p in params:
        g2 = p.grad.reshape(p.shape[0], -1).pow(2).sum(-1)
        sq = g2 if sq is None else sq + g2
    scale = (max_norm / (sq.sqrt() + 1e-12)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.reshape(-1, *([1] * (p.dim() - 1))))


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """Cosine decay from lr to lr_final over the epochs (constant if lr_final is None)."""
    if cfg.lr_final is None:
        return cfg.lr
    t = epoch / max(cfg.epochs - 1, 1)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def fit(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor],
        next_points: Callable[[], torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """Train; returns the loss curve (K, epochs) (NaN-free trials; a diverged trial's
    curve holds its non-finite values). Stops early if every trial diverged."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    K = params[0].shape[0]
    curve = torch.full((K, cfg.epochs), math.nan, dtype=torch.float64, device=params[0].device)
    x = None
    for epoch in range(cfg.epochs):
        if epoch % cfg.resample_every == 0:
            x = next_points()
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(x)
        loss.sum().backward()
        if cfg.clip_norm is not None:
            clip_per_trial(params, cfg.clip_norm)
        opt.step()
        curve[:, epoch] = loss.detach()
        if epoch % 200 == 199 and not torch.isfinite(curve[:, epoch]).any():
            break
    return curve


def first_nonfinite(curve: torch.Tensor) -> list[Optional[int]]:
    """Per trial: the first epoch with a NaN/inf loss, or None."""
    out = []
    for row in curve.cpu():
        bad = torch.nonzero(~torch.isfinite(row))
        out.append(int(bad[0]) if bad.numel() else None)
    return out


def restart_stream(name: str, start: int) -> str:
    """The random stream ``name`` of start ``start`` of a trial: start 0 uses the trial's own
    stream, start j > 0 the stream "name/restart<j>" (both derived from the trial's spec)."""
    return name if start == 0 else f"{name}/restart{start}"


def final_loss(curve: torch.Tensor) -> torch.Tensor:
    """Per row of a loss curve (K, epochs): the (lower) median of its last 5% of epochs (at
    least one); +inf where any of those is not finite (a diverged start is never kept)."""
    n = max(1, curve.shape[1] // 20)
    tail = curve[:, -n:]
    score = tail.median(dim=1).values
    return torch.where(torch.isfinite(tail).all(dim=1), score, torch.full_like(score, math.inf))


def keep_best(model: torch.nn.Module, curve: torch.Tensor, restarts: int):
    """Of K * restarts batched starts (trial-major: row k * restarts + j is start j of trial k),
    keep per trial the start with the lowest :func:`final_loss`. The model's parameters
    (a PotentialNet, or a wrapper holding one as ``.net``) are cut to those K rows in
    place; returns (model, curve (K, epochs))."""
    if restarts == 1:
        return model, curve
    K = curve.shape[0] // restarts
    score = final_loss(curve).reshape(K, restarts)
    rows = score.argmin(dim=1) + restarts * torch.arange(K, device=score.device)
    net = getattr(model, "net", model)
    with torch.no_grad():
        for p in net.parameters():
            p.data = p.data[rows.to(p.device)].clone()
    net.K = K
    model.K = K
    return model, curve[rows]
