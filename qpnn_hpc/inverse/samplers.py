"""Point samplers: uniform in the box, and Metropolis from |psi|^2.

Walkers are a batch axis: a chain state is a tensor (..., W, D) and every call
advances all W walkers at once (as DeepQMC and FermiNet do).  The chain
(:class:`MetropolisChain`: accept/reject, burn-in, thinning, step adaptation,
diagnostics) is split from its proposal rule (:class:`GaussianProposal`;
:class:`LogRadialProposal` for radial systems), as NetKet splits sampler and rule.

Every random number comes from an explicit ``torch.Generator`` seeded from the
trial's own spec: there is no process-wide seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from qpnn_hpc.config import check, field
from qpnn_hpc.stats import rhat_from_stats


def uniform_points(box, n: int, generator: torch.Generator, dtype=torch.float64, device="cpu"):
    """n points uniform in the box ((lo, hi) per axis): shape (n, D)."""
    check(n > 0, "points", f"must be a positive number of points, got {n}")
    lo = torch.tensor([b[0] for b in box], dtype=dtype, device=device)
    hi = torch.tensor([b[1] for b in box], dtype=dtype, device=device)
    u = torch.rand((n, len(box)), generator=generator, dtype=dtype, device=device)
    return lo + (hi - lo) * u


@dataclass(frozen=True)
class MetropolisConfig:
    chains: int = field(512, help="number of walkers W advanced together")
    burn_in: int = field(500, help="steps discarded at the start; the step size adapts only here")
    thin: int = field(10, help="steps between kept samples")
    step: float = field(0.5, help="initial Gaussian proposal width (bohr; radial systems: of ln r)")
    target_acceptance: float = field(0.5, help="acceptance rate aimed at while adapting the step")

    def __post_init__(self):
        check(self.chains > 0, "sampler.chains", f"must be > 0, got {self.chains}")
        check(self.burn_in >= 0, "sampler.burn_in", f"must be >= 0, got {self.burn_in}")
        check(self.thin > 0, "sampler.thin", f"must be > 0, got {self.thin}")
        check(self.step > 0, "sampler.step", f"must be > 0, got {self.step}")
        check(0 < self.target_acceptance < 1, "sampler.target_acceptance", "must lie in (0, 1)")


class GaussianProposal:
    """Symmetric random-walk rule x' = x + step * N(0, 1); ``step`` per walker, shape (..., W, 1)."""

    def __init__(self, step: torch.Tensor):
        self.step = step

    def propose(self, x, generator):
        return x + self.step * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)

    def log_ratio(self, x, prop):
        """ln q(x | x') - ln q(x' | x): 0, the rule is symmetric (a float: no tensor per step)."""
        return 0.0

    def adapt(self, accepted: torch.Tensor, target: float, rate: float = 0.05):
        """Robbins-Monro update of each walker's step towards the target acceptance (burn-in only)."""
        self.step = self.step * torch.exp(rate * (accepted.to(self.step.dtype)[..., None] - target))


class LogRadialProposal(GaussianProposal):
    """Radial systems (x = r > 0, bohr): a random walk in ln r, r' = r exp(step N(0, 1)).
    Moves scale with r, as the shells of an atom do (Li: 1s at 0.36 bohr, 2s at 3.1): with
    the Gaussian rule each walker's adapted step is set by the shell it sits in, and the
    walkers crossed between shells so slowly that split R-hat over 100 sweeps was 1.08-1.10 in
    every Li trial of jobs/atoms.toml (400 sweeps, Li / Be / Ne: 1.02 / 1.008 / 1.002, against
    1.001 for all three with this rule). The Hastings factor q(r | r') / q(r' | r) = r'/r."""

    def propose(self, x, generator):
        return x * torch.exp(self.step * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device))

    def log_ratio(self, x, prop):
        return torch.log(prop / x).sum(-1)


class MetropolisChain:
    """Metropolis chain for a log density log p(x) (here log |psi|^2).

    Accept x -> x' with probability min(1, p(x') q(x | x') / (p(x) q(x' | x))); a rejected
    proposal repeats the current point. Points outside the box are rejected (p = 0 there).
    ``radial``: x = r > 0 and the rule is :class:`LogRadialProposal`; else Gaussian.
    """

    def __init__(self, log_density: Callable, box, config: MetropolisConfig,
                 generator: torch.Generator, dtype=torch.float64, device="cpu", radial: bool = False):
        self.log_density = log_density
        self.cfg = config
        self.gen = generator
        self.lo = torch.tensor([b[0] for b in box], dtype=dtype, device=device)
        self.hi = torch.tensor([b[1] for b in box], dtype=dtype, device=device)
        # walkers start uniform in the central half of the box
        mid, half = 0.5 * (self.lo + self.hi), 0.25 * (self.hi - self.lo)
        u = torch.rand((config.chains, len(box)), generator=generator, dtype=dtype, device=device)
        self.x = mid + half * (2 * u - 1)
        self.logp = self._logp(self.x)
        rule = LogRadialProposal if radial else GaussianProposal
        self.rule = rule(torch.full((config.chains, 1), config.step, dtype=dtype, device=device))
        self.n_steps = 0
        self.n_accepted = torch.zeros((), dtype=dtype, device=device)
        self.burned_in = False

    @classmethod
    def for_system(cls, system, config: MetropolisConfig, generator: torch.Generator, dtype=torch.float64,
                   device="cpu") -> "MetropolisChain":
        """The chain on a system's |psi|^2 (``log_density``) in its ``box``; radial systems
        (``geometry == "radial"``) walk in ln r."""
        return cls(system.log_density, system.box, config, generator, dtype, device,
                   radial=system.geometry == "radial")

    def _logp(self, x):
        inside = ((x >= self.lo) & (x <= self.hi)).all(-1)
        with torch.no_grad():
            lp = self.log_density(x)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    @torch.no_grad()
    def step(self) -> torch.Tensor:
        """One Metropolis step of all walkers; returns the accepted mask (W,)."""
        prop = self.rule.propose(self.x, self.gen)
        lp = self._logp(prop)
        u = torch.rand(lp.shape, generator=self.gen, dtype=lp.dtype, device=lp.device)
        acc = torch.log(u) < (lp - self.logp + self.rule.log_ratio(self.x, prop))
        self.x = torch.where(acc[..., None], prop, self.x)
        self.logp = torch.where(acc, lp, self.logp)
        return acc

    def burn(self) -> None:
        """Burn-in with step adaptation; afterwards the step size is frozen."""
        for _ in range(self.cfg.burn_in):
            acc = self.step()
            self.rule.adapt(acc, self.cfg.target_acceptance)
        self.burned_in = True

    @torch.no_grad()
    def sample(self, n_per_chain: int) -> torch.Tensor:
        """Samples (n_per_chain, W, D), ``thin`` steps apart, after burn-in."""
        if not self.burned_in:
            self.burn()
        out = []
        for _ in range(n_per_chain):
            for _ in range(self.cfg.thin):
                acc = self.step()
                self.n_steps += 1
                self.n_accepted += acc.to(self.n_accepted.dtype).mean()
            out.append(self.x.clone())
        return torch.stack(out)

    def points(self, n: int) -> torch.Tensor:
        """n points (n, D) from the chains: ceil(n/W) thinned sweeps, flattened, first n kept."""
        check(n > 0, "train.points", f"must be a positive number of points, got {n}")
        per_chain = -(-n // self.cfg.chains)
        return self.sample(per_chain).reshape(-1, self.x.shape[-1])[:n]

    @property
    def acceptance(self) -> float:
        """Mean acceptance rate after burn-in."""
        return float(self.n_accepted / max(self.n_steps, 1))


def split_rhat(samples: torch.Tensor) -> float:
    """Split R-hat of samples (T, W, D): each chain is split in halves."""
    T = samples.shape[0] // 2
    check(T >= 2, "sampler", "R-hat needs at least 4 samples per chain")
    s = torch.cat([samples[:T], samples[T:2 * T]], dim=1).to(torch.float64).cpu().numpy()  # (T, 2W, D)
    return rhat_from_stats(s.mean(0), s.var(0, ddof=1), T)
