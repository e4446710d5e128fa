"""The Metropolis energy of a learned potential from blocks of chains, optionally over MPI ranks.

The evaluation chains of a trial come in ``eval.chain_blocks`` blocks of
``sampler.chains`` walkers; block b is seeded from the trial spec and b alone. Each
block reduces to per-chain statistics (mean local energy; means and variances of the
coordinates in each half of the chain). Blocks can run on different ranks; the
statistics are gathered in block order and combined, so the energy (seed 001 eq. 8),
its error bar sigma(chain means)/sqrt(chains) and the split R-hat over all chains are
the same numbers whatever the number of ranks.

Each block also keeps the moments (count, mean, sum of squared deviations) of the local
energy E(x) and, where V is known, of U(x) - V(x) over all its samples x ~ |psi|^2;
:func:`spread` merges them (Chan et al.'s pairwise update) into the quality diagnostics of
:mod:`qpnn_hpc.inverse.quality`: the local-energy spread sigma_E and the density-weighted
potential error, equally independent of the number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from qpnn_hpc.config import seed_from
from qpnn_hpc.inverse.losses import local_energy
from qpnn_hpc.inverse.samplers import MetropolisChain
from qpnn_hpc.stats import rhat_from_stats


@dataclass
class BlockStats:
    chain_energy: np.ndarray   # (K, W) mean local energy per chain (Hartree)
    half_mean: np.ndarray      # (K, 2W, D) coordinate means of each half chain (bohr)
    half_var: np.ndarray       # (K, 2W, D) their unbiased variances
    half_len: int              # samples per half chain
    acceptance: np.ndarray     # (K,) acceptance rate after burn-in
    energy_moments: Optional[np.ndarray] = None   # (K, 3): count, mean, sum of squared deviations of E(x)
    offset_moments: Optional[np.ndarray] = None   # (K, 3): the same of U(x) - V(x) (None: V unknown)
    kinetic_moments: Optional[np.ndarray] = None  # (K, 3): the same of k(x)/2 = Lap|psi|/(2|psi|)


def _moments(v: torch.Tensor) -> np.ndarray:
    """(K, 3) count, mean and sum of squared deviations of v (K, N), float64."""
    v = v.detach().to(torch.float64)
    m = v.mean(-1)
    m2 = ((v - m[:, None]) ** 2).sum(-1)
    n = torch.full_like(m, v.shape[-1])
    return torch.stack([n, m, m2], -1).cpu().numpy()


def merge_moments(parts) -> np.ndarray:
    """Merge (K, 3) moments of disjoint sample sets (Chan, Golub and LeVeque's pairwise update)."""
    out = np.array(parts[0], dtype=np.float64)
    for p in parts[1:]:
        n_a, m_a, s_a = out.T
        n_b, m_b, s_b = np.asarray(p, dtype=np.float64).T
        n = n_a + n_b
        d = m_b - m_a
        out = np.stack([n, m_a + d * n_b / n, s_a + s_b + d * d * n_a * n_b / n], -1)
    return out


def block_stats(system, model, specs, block: int, dtype, device) -> BlockStats:
    """Run block ``block`` of every trial's evaluation chains (one per spec, model batch order)."""
    T = specs[0].eval.energy_sweeps
    chains = []
    for s in specs:
        g = torch.Generator(device=device)
        g.manual_seed(seed_from(s, "eval-chain", block))
        chains.append(MetropolisChain.for_system(system, s.sampler, g, dtype, device))
    samples = torch.stack([c.sample(T) for c in chains])  # (K, T, W, D)
    K, T, W, D = samples.shape
    x = samples.reshape(K, T * W, D)
    kinetic = system.kinetic_local(x).detach()
    with torch.no_grad():
        e_flat = local_energy(system, model, x, kinetic)
        offset = (_moments(e_flat + 0.5 * kinetic - system.potential(x)) if system.has_potential else None)
        e = e_flat.reshape(K, T, W)
    h = T // 2
    halves = torch.cat([samples[:, :h], samples[:, h:2 * h]], dim=2).to(torch.float64)  # (K, h, 2W, D)
    return BlockStats(chain_energy=e.mean(1).double().cpu().numpy(),
                      half_mean=halves.mean(1).cpu().numpy(), half_var=halves.var(1).cpu().numpy(),
                      half_len=h, acceptance=np.array([c.acceptance for c in chains]),
                      energy_moments=_moments(e_flat), offset_moments=offset,
                      kinetic_moments=_moments(0.5 * kinetic.expand_as(e_flat)))


def combine(blocks: list[BlockStats]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Energy, its error, R-hat and acceptance per trial (K,) from blocks in block order."""
    ce = np.concatenate([b.chain_energy for b in blocks], axis=1)
    hm = np.concatenate([b.half_mean for b in blocks], axis=1)
    hv = np.concatenate([b.half_var for b in blocks], axis=1)
    n = blocks[0].half_len
    energy = ce.mean(1)
    err = ce.std(1, ddof=1) / np.sqrt(ce.shape[1])
    rhat = np.array([rhat_from_stats(hm[k], hv[k], n) for k in range(ce.shape[0])])
    acc = np.mean([b.acceptance for b in blocks], axis=0)
    return energy, err, rhat, acc


def spread(blocks: list[BlockStats]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per trial (K,), over every sample of every block (x ~ |psi|^2; radial: 4 pi r^2 |psi|^2):

        sigma_E     = sqrt(<(E - <E>)^2>)                   local-energy spread      [Ha]
        eps_density = sqrt(<(U - V - <U - V>)^2>)           density-weighted eps     [Ha]
        offset      = <U - V>                               gauge offset             [Ha]
        sigma_k     = sqrt(<(k/2 - <k/2>)^2>)               spread of the exact U*   [Ha]

    (eps_density and offset NaN where V is unknown). U* = E* + k/2 is the exact inversion, so
    sigma_E / sigma_k is the fraction of the potential's variation U misses."""
    e = merge_moments([b.energy_moments for b in blocks])
    sigma = np.sqrt(e[:, 2] / e[:, 0])
    kin = merge_moments([b.kinetic_moments for b in blocks])
    sigma_k = np.sqrt(kin[:, 2] / kin[:, 0])
    if blocks[0].offset_moments is None:
        nan = np.full(len(sigma), np.nan)
        return sigma, nan, nan.copy(), sigma_k
    d = merge_moments([b.offset_moments for b in blocks])
    return sigma, np.sqrt(d[:, 2] / d[:, 0]), d[:, 1], sigma_k


def metropolis_energy(system, model, specs, dtype, device, comm=None, with_spread=False):
    """Eq. 8 over all evaluation chains of each trial; blocks spread over ``comm``'s ranks
    (round robin) when given. Every rank of ``comm`` must call this; all get the result.
    ``with_spread``: also :func:`spread`'s four arrays (an 8-tuple)."""
    n_blocks = specs[0].eval.chain_blocks
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    try:
        mine = {b: block_stats(system, model, specs, b, dtype, device) for b in range(rank, n_blocks, size)}
    except Exception as e:
        if size == 1:
            raise
        mine = f"rank {rank}: {type(e).__name__}: {e}"  # the others must hear of it, not wait in allgather
    parts = [mine] if size == 1 else comm.allgather(mine)
    errors = [p for p in parts if isinstance(p, str)]
    if errors:
        raise RuntimeError(f"evaluation chains failed on {'; '.join(errors)}")
    merged = {b: stats for part in parts for b, stats in part.items()}
    blocks = [merged[b] for b in range(n_blocks)]
    if with_spread:
        return (*combine(blocks), *spread(blocks))
    return combine(blocks)
