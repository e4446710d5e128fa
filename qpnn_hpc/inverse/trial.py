"""A trial: learn U(x) for one system with one method, as a pure function of its spec.

``run_trial(spec) -> TrialResult``. The trial id is a hash of the canonical spec
(as signac names its jobs); every random stream (initial weights, training
points, Metropolis walkers, evaluation points) is seeded from the spec itself, so
the same spec gives the same numbers on the same kind of device. The initial weights
are drawn on the CPU everywhere; the other streams are drawn on the trial's device
(a CUDA generator's sequence differs from the CPU one: a CPU draw and a copy per
Metropolis step would cost a host-device round trip), so CPU and GPU runs of one spec
are statistically, not bitwise, alike. ``run_trials(specs)`` trains K specs that
differ only in their seed as one batched model (:func:`batch_key`) and returns
exactly what K separate calls would.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from qpnn_hpc.inverse import chains as chains_mod
from qpnn_hpc.inverse import divergence
from qpnn_hpc.inverse import losses
from qpnn_hpc.inverse import metrics
from qpnn_hpc.inverse import quality
from qpnn_hpc import parallel
from qpnn_hpc.config import check, field, from_dict, seed_from, spec_hash, to_dict
from qpnn_hpc.inverse.losses import LossConfig
from qpnn_hpc.inverse.models import AnchoredPotential, ModelConfig, PotentialNet, preset_table
from qpnn_hpc.inverse.samplers import MetropolisChain, MetropolisConfig, uniform_points
from qpnn_hpc.inverse.systems import System, make_system
from qpnn_hpc.inverse.training import TrainConfig, first_nonfinite, fit, keep_best, restart_stream

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: The scalar results of a trial, in the order of the results file (the quality diagnostics of
#: :mod:`qpnn_hpc.inverse.quality` after the seed's).
SCALARS = ("energy", "energy_metropolis", "energy_err", "energy_exact", "eps", "acceptance", "rhat",
           "anchor_value", *quality.COLUMNS, "wall_time")


@dataclass(frozen=True)
class EvalConfig:
    eps_points: int = field(1000, help="uniform points in the box for the potential error eps (seed 001: 1000)")
    energy_sweeps: int = field(100, help="thinned sweeps of fresh Metropolis chains for the energy (eq. 8)")
    chain_blocks: int = field(1, help="blocks of sampler.chains evaluation walkers (spread over ranks with "
                                      "--chains-over-ranks)")
    uniform_energy_points: int = field(10000, help="uniform points for the QPNN energy estimate (eq. 10)")
    grid_points: int = field(201, help="points of the potential curve along the system's evaluation line")

    def __post_init__(self):
        for name in ("eps_points", "energy_sweeps", "uniform_energy_points", "grid_points"):
            check(getattr(self, name) > 0, f"eval.{name}", "must be a positive number of points")
        check(self.energy_sweeps >= 4, "eval.energy_sweeps", "needs >= 4 sweeps for R-hat")
        check(self.chain_blocks > 0, "eval.chain_blocks", "must be > 0")


@dataclass(frozen=True)
class TrialSpec:
    system: dict = field(help='the target system: {name = "hydrogen", ...params}')
    method: str = field("mpnn", help=f"one of {list(losses.METHODS)}")
    model: ModelConfig = field(ModelConfig(), help="the potential network")
    train: TrainConfig = field(TrainConfig(), help="optimiser and schedule")
    sampler: MetropolisConfig = field(MetropolisConfig(), help="Metropolis chains (qpnn_ms, mpnn, energies)")
    loss: LossConfig = field(LossConfig(), help="anchor and its weight")
    eval: EvalConfig = field(EvalConfig(), help="metrics")
    dtype: str = field("float32", help="float32 or float64")
    seed: int = field(0, help="trial seed: all random streams derive from the whole spec")

    def __post_init__(self):
        check(self.method in losses.METHODS, "method",
              f"unknown method {self.method!r}; valid methods are: {', '.join(losses.METHODS)}")
        check(self.dtype in DTYPES, "dtype", f"unknown dtype {self.dtype!r}; use float32 or float64")
        check("name" in self.system, "system.name", "missing: name the system, e.g. name = \"hydrogen\"")

    @classmethod
    def from_dict(cls, data: dict) -> "TrialSpec":
        data = dict(data)
        if isinstance(data.get("model"), str):  # a preset name
            data["model"] = preset_table(data["model"])
        spec = from_dict(cls, data)
        # validate the system, its anchor and the radial-only options now, not mid-campaign
        system = build_system(spec)
        r0, _ = system.anchor(spec.loss.anchor, spec.loss.anchor_value)
        from qpnn_hpc.inverse.models import anchor_on_kink  # an anchor on a kink of the inputs (issue 12)
        kink = anchor_on_kink(spec.model, system.dim, r0)
        check(kink is None, "loss.anchor" if spec.loss.anchor is not None else "loss.anchor (unset: the "
              f"system's default)", kink or "")
        radial = system.geometry == "radial"
        check(radial or not spec.model.log_radius or (spec.model.radius_input and system.dim > 1),
              "model.log_radius", f"needs a radial system (input r > 0), or radius_input = true in D > 1 (ln|x| "
              f"appended); {spec.system['name']!r} is {system.geometry}: set log_radius = false")
        check(radial or not spec.loss.volume_weight, "loss.volume_weight",
              f"needs a radial system; {spec.system['name']!r} is {system.geometry}: set volume_weight = false")
        check(spec.method == "qpnn" or not spec.loss.volume_weight, "loss.volume_weight",
              f"applies to uniform points (method qpnn); {spec.method}'s Metropolis points already follow "
              "4 pi r^2 |psi|^2: set volume_weight = false")
        return spec

    @property
    def id(self) -> str:
        return spec_hash(self)

    def to_json(self) -> str:
        return json.dumps(to_dict(self), sort_keys=True)


def batch_key(spec: TrialSpec) -> str:
    """Specs with equal keys differ only in their seed and can train as one batched model."""
    return spec_hash(dataclasses.replace(spec, seed=0))


def build_system(spec: TrialSpec) -> System:
    params = {k: v for k, v in spec.system.items() if k != "name"}
    return make_system(spec.system["name"], params)


@dataclass
class TrialResult:
    """What a trial produces. Energies in Hartree, lengths in bohr."""
    trial_id: str
    spec_json: str
    status: str                      # "done" or "failed"
    reason: str                      # why it failed ("" when done)
    energy: float                    # the method's estimate: eq. 10 (qpnn) or eq. 8 (qpnn_ms, mpnn)
    energy_metropolis: float         # eq. 8 on fresh chains, for every method
    energy_err: float                # standard error of energy_metropolis
    energy_exact: float              # the system's exact E (NaN if unknown)
    eps: float                       # potential error, eq. 9 (NaN if V unknown)
    acceptance: float                # Metropolis acceptance rate of the evaluation chains
    rhat: float                      # split R-hat of the evaluation chains
    loss_curve: np.ndarray           # (epochs,)
    grid: np.ndarray                 # abscissa of the potential curve (bohr)
    potential: np.ndarray            # learned U on the grid (Ha)
    potential_true: np.ndarray       # true V on the grid (NaN if unknown)
    anchor: tuple                    # r0 (bohr)
    anchor_value: float              # V(r0) (Ha)
    wall_time: float                 # seconds (the batch's time divided by its size)
    # quality checks (qpnn_hpc.inverse.quality; NaN where not computed)
    residual: float = float("nan")        # local-energy spread sigma_E (Ha)
    residual_relative: float = float("nan")  # sigma_E / sigma(k/2): the fraction of U*'s variation missed
    eps_density: float = float("nan")     # |psi|^2-weighted RMS of U - V - <U - V> (Ha)
    offset_density: float = float("nan")  # |psi|^2-weighted mean of U - V (Ha)
    anchor_gap: float = float("nan")      # E - E*, E* = V(r0) - k(r0)/2 (Ha)
    round_trip: float = float("nan")      # relative L2 of the round trip (1D line systems)
    warnings: str = ""                    # the verdict's named warnings of a done trial ("" none)
    density_line: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))  # along grid, max 1

    def scalars(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SCALARS}


def _generator(spec: TrialSpec, stream: str, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed_from(spec, stream))
    return g


def run_trial(spec: TrialSpec, device: str | torch.device = "cpu", comm=None) -> TrialResult:
    """Run one trial (a pure function of ``spec`` and the device kind; ``device`` does not
    enter the id)."""
    return run_trials([spec], device, comm)[0]


def run_trials(specs: Sequence[TrialSpec], device: str | torch.device = "cpu", comm=None) -> list[TrialResult]:
    """Train K specs with one batch key as one batched model; results in spec order.

    With ``comm`` (an MPI communicator of several ranks, all calling this), rank 0 trains,
    the network is broadcast and the evaluation chains are spread over the ranks; every
    rank returns the same results, equal to a run without ``comm``."""
    check(len(specs) > 0, "specs", "needs at least one trial")
    key = batch_key(specs[0])
    check(all(batch_key(s) == key for s in specs), "specs", "batched trials may differ only in their seed")
    t0 = time.perf_counter()
    device = torch.device(device)
    spec0 = specs[0]
    dtype = DTYPES[spec0.dtype]
    system = build_system(spec0)
    anchor_pt, anchor_val = system.anchor(spec0.loss.anchor, spec0.loss.anchor_value)
    anchor_t = torch.tensor(anchor_pt, dtype=dtype, device=device)
    K, N = len(specs), spec0.train.points
    lam = spec0.loss.anchor_weight

    R = spec0.train.restarts
    starts = [(s, j) for s in specs for j in range(R)]  # train.restarts: row k * R + j is start j of trial k
    model = PotentialNet(system.dim, spec0.model, [_generator(s, restart_stream("init", j), "cpu")
                                                   for s, j in starts], dtype=dtype, device=device)
    if spec0.loss.anchor_mode == "exact":
        model = AnchoredPotential(model, anchor_t, anchor_val)
        lam = 0.0

    if spec0.method == "qpnn":
        gens = [_generator(s, restart_stream("points", j), device) for s, j in starts]

        def next_points():
            return torch.stack([uniform_points(system.box, N, g, dtype, device) for g in gens])

        def loss_fn(x):
            w = losses.volume_weights(x[..., 0]) if spec0.loss.volume_weight else None
            return losses.qpnn_loss(system, model, x, anchor_t, anchor_val, lam, weight=w)
    else:
        chains = [MetropolisChain.for_system(system, spec0.sampler, _generator(s, restart_stream("chain", j), device),
                                             dtype, device)
                  for s, j in starts]
        cache = {}

        def next_points():
            x = torch.stack([c.points(N) for c in chains])
            if spec0.method == "mpnn":  # |psi| and the kinetic term do not depend on the network
                cache["psi"] = system.psi(x).detach()
                cache["kin"] = system.kinetic_local(x).detach()
            return x

        def loss_fn(x):
            if spec0.method == "qpnn_ms":
                return losses.qpnn_loss(system, model, x, anchor_t, anchor_val, lam)
            return losses.mpnn_loss(system, model, x, anchor_t, anchor_val, lam,
                                    psi=cache["psi"], kinetic=cache["kin"])

    if comm is None or comm.Get_size() == 1:
        curve = fit(model, loss_fn, next_points, spec0.train)
    else:  # rank 0 trains; the trained network and curve (or its error) go to every rank
        def train():
            c = fit(model, loss_fn, next_points, spec0.train)
            return {k: v.cpu() for k, v in model.state_dict().items()}, c.cpu()
        state, curve = parallel.agree(comm, train)
        model.load_state_dict(state)
        curve = curve.to(device)
    model, curve = keep_best(model, curve, R)
    results = _evaluate(specs, system, model, curve, anchor_pt, anchor_val, dtype, device, comm)
    wall = (time.perf_counter() - t0) / K
    for r in results:
        r.wall_time = wall
    return results


def _evaluate(specs, system, model, curve, anchor_pt, anchor_val, dtype, device, comm) -> list[TrialResult]:
    spec0, K = specs[0], len(specs)
    ev = spec0.eval
    e_metro, e_err, rhat, acc, sigma_e, eps_dens, offset, sigma_k = chains_mod.metropolis_energy(
        system, model, specs, dtype, device, comm, with_spread=True)
    if spec0.method == "qpnn":
        xu = torch.stack([uniform_points(system.box, ev.uniform_energy_points,
                                         _generator(s, "energy-points", device), dtype, device) for s in specs])
        energy = metrics.mean_local_energy(system, model, xu)
    else:
        energy = torch.as_tensor(e_metro)
    if system.has_potential:
        xe = torch.stack([uniform_points(system.box, ev.eps_points, _generator(s, "eps-points", device),
                                         dtype, device) for s in specs])
        eps = metrics.potential_error(system, model, xe).tolist()
    else:
        eps = [float("nan")] * K
    s, pts = system.line(ev.grid_points)
    xg = torch.as_tensor(pts, dtype=dtype, device=device)
    with torch.no_grad():
        u_grid = model(xg.expand(K, -1, -1)).cpu().numpy().astype(np.float64)
        v_grid = (system.potential(xg.to(torch.float64)).cpu().numpy() if system.has_potential
                  else np.full(len(s), np.nan))
        logp_line = system.log_density(xg.to(torch.float64)).cpu().numpy()
    dens_line = np.exp(logp_line - np.max(logp_line[np.isfinite(logp_line)], initial=0.0))
    e_star = quality.anchor_energy(system, anchor_pt, anchor_val)
    bad = first_nonfinite(curve)
    diverged = _diverged(specs, system, model, curve, energy, anchor_pt, anchor_val, dtype, device)
    out = []
    for k, spec in enumerate(specs):
        reason = (f"non-finite loss at epoch {bad[k]}" if bad[k] is not None else
                  "non-finite energy" if not np.isfinite(float(energy[k])) else diverged[k] or "")
        failed = bool(reason)
        diag = dict(rhat=float(rhat[k]), residual=float(sigma_e[k]),
                    residual_relative=float(sigma_e[k] / sigma_k[k]) if sigma_k[k] > 0 else float("nan"),
                    eps_density=float(eps_dens[k]),
                    offset_density=float(offset[k]), anchor_gap=float(energy[k]) - e_star,
                    round_trip=quality.round_trip_line(system, s, u_grid[k]))
        out.append(TrialResult(
            trial_id=spec.id, spec_json=spec.to_json(), status="failed" if failed else "done",
            reason=reason, energy=float(energy[k]), energy_metropolis=float(e_metro[k]),
            energy_err=float(e_err[k]),
            energy_exact=float("nan") if system.exact_energy is None else float(system.exact_energy),
            eps=float(eps[k]), acceptance=float(acc[k]),
            rhat=float(rhat[k]), loss_curve=curve[k].cpu().numpy(),
            grid=s, potential=u_grid[k], potential_true=v_grid, anchor=tuple(anchor_pt),
            anchor_value=anchor_val, wall_time=0.0, **{k: v for k, v in diag.items() if k != "rhat"},
            warnings="" if failed else quality.verdict(diag), density_line=dens_line))
    return out


def _diverged(specs, system, model, curve, energy, anchor_pt, anchor_val, dtype, device) -> list:
    """Per trial: why it diverged (:mod:`qpnn_hpc.inverse.divergence`), or None."""
    out = []
    for k, spec in enumerate(specs):
        reason = divergence.loss_growth(curve[k].cpu().numpy())
        if reason is None and np.isfinite(float(energy[k])):
            x = uniform_points(system.box, divergence.GATE_POINTS, _generator(spec, "gate-points", device),
                               dtype, device)
            window = divergence.physical_window(system, x.cpu(), anchor_pt, anchor_val)
            with torch.no_grad():
                u = model(x.expand(len(specs), -1, -1))[k].cpu().numpy().astype(np.float64)
                logp = system.log_density(x.to(torch.float64)).cpu()
                w = torch.exp(logp - logp.max()).numpy()
            reason = divergence.out_of_window(float(energy[k]), u, w, window)
        out.append(reason)
    return out


def failed_result(spec: TrialSpec, reason: str) -> TrialResult:
    """The record of a trial that raised instead of finishing."""
    nan = float("nan")
    return TrialResult(trial_id=spec.id, spec_json=spec.to_json(), status="failed", reason=reason,
                       energy=nan, energy_metropolis=nan, energy_err=nan, energy_exact=nan, eps=nan,
                       acceptance=nan, rhat=nan, loss_curve=np.zeros(0), grid=np.zeros(0),
                       potential=np.zeros(0), potential_true=np.zeros(0), anchor=(), anchor_value=nan,
                       wall_time=0.0)
