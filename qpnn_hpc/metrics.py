"""Metrics of a learned potential (Hartree atomic units).

* potential error (seed 001 eq. 9): eps = (1/N) sum_n |U(x_n) - V(x_n)|, N points uniform in the box  [Ha]
* Metropolis energy (seed 001 eq. 8): Ebar = (1/N) sum_n E(x_n), x_n ~ |psi|^2, with the standard
  error from the spread of per-chain means                                                        [Ha]
* QPNN energy (seed 001 eq. 10): the same average over uniform points                               [Ha]
"""
from __future__ import annotations

import torch

from .losses import local_energy


@torch.no_grad()
def potential_error(system, model, x: torch.Tensor) -> torch.Tensor:
    """eps per trial (K,) on points x (K, N, D) (seed 001 eq. 9)."""
    return (model(x) - system.potential(x)).abs().mean(-1)


def mean_local_energy(system, model, x: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_n E(x_n) per trial (K,) for points x (K, N, D) (seed 001 eqs. 8 and 10)."""
    kinetic = system.kinetic_local(x).detach()
    with torch.no_grad():
        return local_energy(system, model, x, kinetic).mean(-1)


def metropolis_energy(system, model, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ebar and its standard error per trial, from samples (K, T, W, D) of W chains.

    The error bar treats the W per-chain means as independent: sigma / sqrt(W)."""
    K, T, W, D = samples.shape
    x = samples.reshape(K, T * W, D)
    kinetic = system.kinetic_local(x).detach()
    with torch.no_grad():
        e = local_energy(system, model, x, kinetic).reshape(K, T, W)
    chain_means = e.mean(1)
    return chain_means.mean(-1), chain_means.std(-1) / W ** 0.5
