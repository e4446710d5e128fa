"""Local energy and the QPNN / QPNN+MS / MPNN losses (Hartree atomic units).

Shapes: points x (K, N, D) for K batched trials; every loss returns (K,), one value
per trial, so that summing them and back-propagating trains K independent models.

* local energy (seed 001 eqs. 2-3):  E(x) = -1/2 Lap|psi|/|psi| + U(x)          [Ha]
* QPNN (seed 000 eqs. 4-5, seed 001 eq. 4), uniform points; QPNN+MS, Metropolis points:
      L = (1/N) sum_n w_n |grad E(x_n)|^2 + lambda (U(r0) - V(r0))^2         [Ha^2/bohr^2, Ha^2]
  w_n = 1, except for radial systems with ``volume_weight``: w(r) = r^2 (in bohr^2), so that
  L = (1/N) sum_n |r dE/dr|^2 = |dE/d ln r|^2 on points uniform in r. Up to the constant
  <r^2> of the box this is the mean of |grad E|^2 over points uniform in the 3D shell
  lo < |x| < hi (the volume measure 4 pi r^2 dr): the loss of eq. 4 for the atom in 3D,
  whose radial reduction with uniform-r points would otherwise weight the core by 1/r^2
  against the tail. (The constant is not divided out: with Adam's L2 weight decay the
  loss scale matters, and 1e-4 was measured with this one.)
* MPNN (seed 001 eq. 7), Metropolis points from |psi|^2:
      L = sqrt((1/N) sum_n |psi(x_n)|^2 (E(x_n) - Ebar)^2) + lambda (U(r0) - V(r0))^2,
      Ebar = (1/N) sum_n E(x_n)   (eq. 8, differentiated through)
  because [H_theta psi](x) - Ebar psi(x) = psi(x) (E(x) - Ebar).

All derivatives are exact, by autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from qpnn_hpc.inverse import autodiff
from qpnn_hpc.config import check, field

METHODS = ("qpnn", "qpnn_ms", "mpnn")


@dataclass(frozen=True)
class LossConfig:
    anchor: Optional[tuple[float, ...]] = field(None, help="gauge anchor r0 (bohr); default: the system's")
    anchor_value: Optional[float] = field(None, help="V(r0) (Hartree); default: the true potential at r0")
    anchor_weight: float = field(1.0, help="lambda, weight of the anchor term (seed 001 eq. 7)")
    volume_weight: bool = field(False, omit_default=True,
                                help="qpnn on radial systems: weight |grad E|^2 by r^2, the 3D volume measure "
                                     "(see the module docstring); default: uniform in r (seed 000)")
    anchor_mode: str = field("penalty", help='"penalty": the lambda term of seed 000 eq. 5 / seed 001 eq. 7; '
                             '"exact": U = N(x) - N(r0) + V(r0), the gauge fixed by construction (the term is 0)')

    def __post_init__(self):
        check(self.anchor_weight >= 0, "loss.anchor_weight", "must be >= 0")
        check(self.anchor_mode in ("penalty", "exact"), "loss.anchor_mode",
              f'unknown {self.anchor_mode!r}; use "penalty" or "exact"')


def local_energy(system, model, x: torch.Tensor, kinetic: Optional[torch.Tensor] = None) -> torch.Tensor:
    """E(x) = -1/2 Lap|psi|/|psi| + U(x), shape (K, N)."""
    if kinetic is None:
        kinetic = system.kinetic_local(x)
    return -0.5 * kinetic + model(x)


def anchor_term(model, anchor_point: torch.Tensor, anchor_value: float) -> torch.Tensor:
    """(U(r0) - V(r0))^2 per trial, shape (K,)."""
    K = model.K
    u0 = model(anchor_point.expand(K, 1, -1))[:, 0]
    return (u0 - anchor_value) ** 2


def volume_weights(r: torch.Tensor) -> torch.Tensor:
    """w(r) = r^2 (bohr^2): |dE/dr|^2 -> |dE/d ln r|^2, the 3D volume measure up to a constant."""
    return r * r


def qpnn_loss(system, model, x, anchor_point, anchor_value, anchor_weight, weight=None):
    """Seed 000 eqs. 4-5: mean w |grad_x E(x)|^2 + lambda (U(r0) - V(r0))^2, per trial (K,).
    ``weight`` (K, N): per-point w (default 1)."""
    x = x.detach().requires_grad_(True)
    e = local_energy(system, model, x)
    grad = autodiff.gradient(e, x, create_graph=True)
    sq = (grad * grad).sum(-1)
    if weight is not None:
        sq = weight * sq
    return sq.mean(-1) + anchor_weight * anchor_term(model, anchor_point, anchor_value)


def mpnn_loss(system, model, x, anchor_point, anchor_value, anchor_weight, psi=None, kinetic=None):
    """Seed 001 eq. 7 on Metropolis points, per trial (K,). ``psi`` and ``kinetic``
    may be passed precomputed (they do not depend on the network)."""
    if psi is None:
        psi = system.psi(x)
    e = local_energy(system, model, x, kinetic)
    ebar = e.mean(-1, keepdim=True)
    resid = psi * (e - ebar)
    return torch.sqrt((resid * resid).mean(-1)) + anchor_weight * anchor_term(model, anchor_point, anchor_value)
