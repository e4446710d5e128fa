"""Metrics of a learned potential (Hartree atomic units).

* potential error (seed 001 eq. 9): eps = (1/N) sum_n |U(x_n) - V(x_n)|, N points uniform in the box  [Ha]
* Metropolis energy (seed 001 eq. 8): Ebar = (1/N) sum_n E(x_n), x_n ~ |psi|^2: see chains.py       [Ha]
* QPNN energy (seed 001 eq. 10): the same average over uniform points                               [Ha]
"""
from __future__ import annotations

import torch

from qpnn_hpc.inverse.losses import local_energy


@torch.no_grad()
def potential_error(system, model, x: torch.Tensor) -> torch.Tensor:
    """eps per trial (K,) on points x (K, N, D) (seed 001 eq. 9)."""
    return (model(x) - system.potential(x)).abs().mean(-1)


def mean_local_energy(system, model, x: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_n E(x_n) per trial (K,) for points x (K, N, D) (seed 001 eqs. 8 and 10)."""
    kinetic = system.kinetic_local(x).detach()
    with torch.no_grad():
        return local_energy(system, model, x, kinetic).mean(-1)
