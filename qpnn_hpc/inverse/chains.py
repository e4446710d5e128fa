"""The Metropolis energy of a learned potential from blocks of chains, optionally over MPI ranks.

The evaluation chains of a trial come in ``eval.chain_blocks`` blocks of
``sampler.chains`` walkers; block b is seeded from the trial spec and b alone. Each
block reduces to per-chain statistics (mean local energy; means and variances of the
coordinates in each half of the chain). Blocks can run on different ranks; the
statistics are gathered in block order and combined, so the energy (seed 001 eq. 8),
its error bar sigma(chain means)/sqrt(chains) and the split R-hat over all chains are
the same numbers whatever the number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def block_stats(system, model, specs, block: int, dtype, device) -> BlockStats:
    """Run block ``block`` of every trial's evaluation chains (one per spec, model batch order)."""
    T = specs[0].eval.energy_sweeps
    chains = []
    for s in specs:
        g = torch.Generator(device=device)
        g.manual_seed(seed_from(s, "eval-chain", block))
        chains.append(MetropolisChain(system.log_density, system.box, s.sampler, g, dtype, device))
    samples = torch.stack([c.sample(T) for c in chains])  # (K, T, W, D)
    K, T, W, D = samples.shape
    x = samples.reshape(K, T * W, D)
    kinetic = system.kinetic_local(x).detach()
    with torch.no_grad():
        e = local_energy(system, model, x, kinetic).reshape(K, T, W)
    h = T // 2
    halves = torch.cat([samples[:, :h], samples[:, h:2 * h]], dim=2).to(torch.float64)  # (K, h, 2W, D)
    return BlockStats(chain_energy=e.mean(1).double().cpu().numpy(),
                      half_mean=halves.mean(1).cpu().numpy(), half_var=halves.var(1).cpu().numpy(),
                      half_len=h, acceptance=np.array([c.acceptance for c in chains]))


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


def metropolis_energy(system, model, specs, dtype, device, comm=None):
    """Eq. 8 over all evaluation chains of each trial; blocks spread over ``comm``'s ranks
    (round robin) when given. Every rank of ``comm`` must call this; all get the result."""
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
    return combine([merged[b] for b in range(n_blocks)])
