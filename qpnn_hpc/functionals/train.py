r"""Training seed 002's functionals (section 2.3.3): one CNN per spec, many specs as one ensemble.

A functional maps a profile, the one-electron ground-state density n(x) (1/bohr) or the
external potential V(x) (Ha), to one property of the system (Ha):

* ``E``: the one-electron energy E1;  ``T``: its kinetic energy T = E1 - E_V;
* ``A``: the electron affinity A = E1 - E2;  ``Eg``: the fundamental gap Eg = E2 - 2 E1.

Protocol (seed 002, section 2.3.3), Hartree atomic units throughout:

* The training split (100 atoms, 50 molecules) is partitioned into a fit part and a
  validation part of ``round(validation * N)`` systems (20 % in the grid search). The model
  trains on the fit part with Adam (torch's defaults: betas 0.9, 0.999, eps 1e-8) on the
  mean-squared error of minibatches of ``batch_size`` (shuffled every epoch; the last
  minibatch of an epoch keeps the remainder, e.g. 50 + 30 of 80).
* "Training steps": the seed scores the validation set "after each training epoch (run
  through the training set)" and trains for "200 training steps" in the grid search and 300
  for the final models; we read a training step as an epoch (``epochs``).
* ``val_curve[e]``: MSE (Ha^2) on the validation part after epoch e; ``best_val_mse`` is its
  minimum (the grid search's score). ``train_curve[e]``: MSE (Ha^2) of epoch e's minibatches,
  weighted by their sizes (what Keras reports as the epoch's loss).
* ``test_mae``: MAE (Ha) on the test split (81 atoms, 49 molecules) of the weights after the
  last epoch ("trained for 300 training steps, and then assessed by its MAE on the testing
  set"). With ``validation = 0`` the model trains on the whole training split and only the
  test split is scored (the seed's final models; ``val_curve`` is NaN).

Scaling (statistics of the fit part only, stored with the model as ``scale``):

* input: x' = (x - mu_x) / sigma_x with one mean and one standard deviation over all points
  of all fit profiles (a fixed affine map, the same at every grid point, so the convolutions
  still see the profile's shape);
* target: y' = (y - mu_y) / sigma_y; the loss is the MSE of y'; reported numbers are back in
  Ha (``pred = mu_y + sigma_y y'``, MSE in Ha^2 = sigma_y^2 MSE').
* ``scale`` = [mu_x, sigma_x, mu_y, sigma_y] (float64; Ha or 1/bohr for the input, Ha for
  the target).

Measured (seed 002's final setting: lr 0.00256, batch 50, 300 epochs, whole training split,
5 repeats; test MAE in mHa, mean +- sample std), this scaling against raw inputs (targets
standardised in both):

=====================  ===========  ===========  ==========  ==========
atoms                  E            A            T           Eg
=====================  ===========  ===========  ==========  ==========
V, standardised        3.1 +- 3.6   1.2 +- 1.1   0.50 +- 0.3 0.63 +- 0.3
V, raw                 7.1 +- 6.8   3.9 +- 3.2   1.9 +- 1.0  1.7 +- 1.3
n, standardised        37 +- 4      38 +- 9      1.5 +- 1.7  1.28 +- 0.1
n, raw                 43 +- 11     38 +- 5      2.4 +- 3.1  3.2 +- 1.5
seed 002, V / n        3.8 / 38     3.9 / 36     0.54 / 0.72 5.3 / 1.3
=====================  ===========  ===========  ==========  ==========

Molecules, standardised (raw): V: E 0.42 (0.72), A 0.44 (0.47), T 0.16 (0.17), Eg 0.11
(0.12); n: E 0.49 (0.82), A 0.47 (0.46), T 0.16 (0.19), Eg 0.09 (0.43) mHa; seed 002: V 1.1,
0.98, 0.23, 0.86; n 1.2, 0.79, 0.18, 0.19. The seed's finding is reproduced: E[n] and A[n]
are 10-70x worse than the other functionals on atoms and not on molecules. The last-epoch
weights are scored, as in the seed, so single runs scatter (T[V] on atoms: 0.2 to 2.5 mHa
over learning rates 0.00128-0.00512).

Random streams, each a ``torch.Generator`` seeded by :func:`qpnn_hpc.config.seed_from`:

* ``"validation split"``: from (dataset, system, repeat) only, so every grid point and every
  functional of one repeat sees the same partition ("a randomly chosen 20 % partition"), and
  the two runs of the grid search (repeats 0 and 1) see two partitions;
* ``"init"`` (initial weights) and ``"batch order"``: from the whole spec except
  ``keep_weights`` (which changes what is stored, not the numbers).

Batching (:func:`train_batch`): specs with one :func:`batch_key` (same dataset, system,
input, target, batch size, epochs and validation fraction; learning rates, repeats and
keep_weights may differ) train as one :class:`~.cnn.Ensemble`: model k has its own initial
weights, partition, minibatches, scaling, learning rate (an Adam parameter group; torch's
fused Adam) and its own tensors and operations, so a row's numbers are those of training its
spec alone (K = 1) to the bit, whatever the chunking and the caller's thread count (tested;
the requirement was 1e-5 relative). Training runs one intra-op thread per model: ``workers``
threads (default: torch's thread count, the cores) each train chunks of ``chunk`` models
(default 8) in lockstep. On a GPU (untested here) one chunk holds all K models.

Throughput (``benchmarks/functionals_ensemble.py --epochs 100``, scaled to 300 epochs;
atoms, T[V], 80/20, batch 50; this 2-core AMD EPYC Zen 4, best of 2): one model at a time
using both cores 2.40 s per model (1500 models/h); ``train_batch`` with K = 1 (one core)
3.27 s (1100/h); batched K = 10, 50, 200: 1.85, 1.58, 1.62 s (1950, 2280, 2220 models/h),
1.3-1.5x one at a time. The 5x aimed for is out of reach on this CPU: a model is ~0.1
TFLOP (300 epochs of 80 + 20 profiles at 3.9 and 1.3 MFLOP each) and one model alone already
runs its kernels at 30-50 GFLOP/s per core; 5x would need ~200 GFLOP/s from the two cores,
above their float32 peak for these shapes (~80-100 GFLOP/s per core for large matrix
products). Batching saves the per-step overhead and the imperfect two-thread scaling of one
small model, not arithmetic.
"""
from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Sequence

import numpy as np
import torch

from qpnn_hpc.config import check, field, seed_from, spec_hash, to_dict
from qpnn_hpc.functionals import cnn

__all__ = ["SYSTEMS", "INPUTS", "TARGETS", "FunctionalSpec", "Profiles", "batch_key", "train_batch",
           "ROW_KEYS"]

SYSTEMS = ("atoms", "molecules")
#: Input name -> profile key of the dataset (n: the one-electron density n1, 1/bohr; V: Ha).
INPUTS = {"n": "n1", "V": "V"}
#: Target name -> scalar key of the dataset (Ha).
TARGETS = {"E": "E1", "T": "T", "A": "A", "Eg": "Eg"}
#: Keys of every row :func:`train_batch` returns.
ROW_KEYS = ("id", "status", "reason", "val_curve", "train_curve", "best_val_mse", "test_mae",
            "test_pred", "weights", "scale", "wall_time")

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclasses.dataclass(frozen=True)
class FunctionalSpec:
    """One training of one functional Q[input] (seed 002: 8 functionals per dataset)."""

    dataset: str = field(help="path of the dataset file (HDF5 of qpnn_hpc.exact1d), as given in the campaign")
    system: str = field("atoms", help="'atoms' or 'molecules': which dataset of seed 002")
    input: str = field("n", help="'n' (one-electron density n1, 1/bohr) or 'V' (external potential, Ha)")
    target: str = field("E", help="'E' (E1), 'T' (kinetic), 'A' (E1 - E2) or 'Eg' (E2 - 2 E1), all in Ha")
    lr: float = field(0.00256, help="Adam learning rate (seed 002's choice: 0.00256)")
    batch_size: int = field(50, help="profiles per minibatch (seed 002's choice: 50)")
    epochs: int = field(300, help="epochs (passes over the fit part; seed 002: 200 in the grid search, 300 final)")
    validation: float = field(0.2, help="fraction of the training split held out for validation, in [0, 1); "
                                        "0: train on the whole split and score the test split only")
    repeat: int = field(0, help="repeat index (>= 0): enters the id and every random stream")
    keep_weights: bool = field(False, help="return the trained weights (a flat float32 vector) in the row")

    def __post_init__(self):
        check(isinstance(self.dataset, str) and self.dataset != "", "dataset",
              f"give the path of the dataset file, got {self.dataset!r}")
        check(self.system in SYSTEMS, "system", f"unknown {self.system!r}; use one of {', '.join(SYSTEMS)}")
        check(self.input in INPUTS, "input", f"unknown {self.input!r}; use one of {', '.join(INPUTS)}")
        check(self.target in TARGETS, "target", f"unknown {self.target!r}; use one of {', '.join(TARGETS)}")
        check(_is_number(self.lr) and self.lr > 0, "lr", f"learning rate must be a number > 0, got {self.lr!r}")
        check(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size",
              f"must be an integer >= 1, got {self.batch_size!r}")
        check(_is_int(self.epochs) and self.epochs >= 1, "epochs", f"must be an integer >= 1, got {self.epochs!r}")
        check(_is_number(self.validation) and 0 <= self.validation < 1, "validation",
              f"fraction held out must be in [0, 1) (0.2 in seed 002's grid search), got {self.validation!r}")
        check(_is_int(self.repeat) and self.repeat >= 0, "repeat", f"must be an integer >= 0, got {self.repeat!r}")
        check(isinstance(self.keep_weights, bool), "keep_weights", f"expected true or false, got {self.keep_weights!r}")

    @property
    def id(self) -> str:
        return spec_hash(self)


def _streams(spec: FunctionalSpec) -> dict:
    return {k: v for k, v in to_dict(spec).items() if k != "keep_weights"}


def split_seed(spec: FunctionalSpec) -> int:
    """Seed of the validation partition: (dataset, system, repeat) only."""
    return seed_from({"dataset": spec.dataset, "system": spec.system, "repeat": spec.repeat}, "validation split")


def init_seed(spec: FunctionalSpec) -> int:
    return seed_from(_streams(spec), "init")


def order_seed(spec: FunctionalSpec) -> int:
    return seed_from(_streams(spec), "batch order")


def batch_key(spec: FunctionalSpec) -> tuple:
    """Specs with equal keys train as one ensemble (learning rate, repeat, keep_weights may differ)."""
    return (spec.dataset, spec.system, spec.input, spec.target, spec.batch_size, spec.epochs, spec.validation)


@dataclasses.dataclass(frozen=True, eq=False)
class Profiles:
    """A dataset's profiles and labels, per split.

    ``x``: grid (bohr, length L). ``train`` and ``test``: dicts of ``V`` (N, L) in Ha, ``n1``
    (N, L) in 1/bohr and the scalars ``E1``, ``T``, ``A``, ``Eg``, ``E_V`` (N,) in Ha.
    """

    PROFILE_KEYS = ("V", "n1")
    LABEL_KEYS = ("E1", "T", "A", "Eg", "E_V")
    SPLITS = ("train", "test")

    x: np.ndarray = field(help="grid points (bohr)")
    train: Mapping[str, np.ndarray] = field(help="training split: V, n1 (N, L); E1, T, A, Eg, E_V (N,)")
    test: Mapping[str, np.ndarray] = field(help="test split: same keys as train")

    def __post_init__(self):
        x = np.array(self.x, dtype=float)
        check(x.ndim == 1 and x.size >= 2, "x", f"grid must be 1D with >= 2 points, got shape {x.shape}")
        object.__setattr__(self, "x", _frozen(x))
        for split in self.SPLITS:
            data = getattr(self, split)
            missing = [k for k in self.PROFILE_KEYS + self.LABEL_KEYS if k not in data]
            check(not missing, split, f"missing {', '.join(missing)}")
            out = {k: _frozen(np.array(data[k], dtype=float)) for k in self.PROFILE_KEYS + self.LABEL_KEYS}
            n = out["V"].shape[0]
            for k in self.PROFILE_KEYS:
                check(out[k].shape == (n, x.size), f"{split}.{k}",
                      f"shape {out[k].shape}; expected ({n}, {x.size}) (systems, grid points)")
            for k in self.LABEL_KEYS:
                check(out[k].shape == (n,), f"{split}.{k}", f"shape {out[k].shape}; expected ({n},)")
            object.__setattr__(self, split, out)

    @classmethod
    def from_solutions(cls, x, train_results: Sequence[dict], test_results: Sequence[dict]) -> "Profiles":
        """From lists of :func:`qpnn_hpc.exact1d.dataset.solve_system` results (dicts)."""
        def split(results):
            check(len(results) >= 1, "results", "need at least one solved system per split")
            return {k: np.stack([np.asarray(r[k], dtype=float) for r in results])
                    for k in cls.PROFILE_KEYS + cls.LABEL_KEYS}
        return cls(np.asarray(x, dtype=float), split(train_results), split(test_results))

    def split(self, name: str) -> Mapping[str, np.ndarray]:
        check(name in self.SPLITS, "split", f"unknown {name!r}; use one of {', '.join(self.SPLITS)}")
        return getattr(self, name)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _partition(spec: FunctionalSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices of the training split (each sorted)."""
    n_val = int(round(spec.validation * n))
    check(spec.validation == 0 or 1 <= n_val <= n - 1, "validation",
          f"{spec.validation} of {n} training systems leaves {n_val} for validation and {n - n_val} to fit; "
          "both must be >= 1 (or set validation = 0)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed(spec))).numpy()
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _scale(x_fit: np.ndarray, y_fit: np.ndarray) -> np.ndarray:
    sx, sy = float(x_fit.std()), float(y_fit.std())
    return np.array([x_fit.mean(), sx if sx > 0 else 1.0, y_fit.mean(), sy if sy > 0 else 1.0])


#: Models per chunk (measured in benchmarks/functionals_ensemble.py: see the module docstring).
DEFAULT_CHUNK = 8


def train_batch(specs: Sequence[FunctionalSpec], profiles: Profiles, device="cpu", workers: int | None = None,
                chunk: int | None = None) -> list[dict]:
    """Train every spec (all of one :func:`batch_key`) as one batched ensemble; one row per spec, in order.

    Row keys (:data:`ROW_KEYS`): ``id`` (the spec's), ``status`` ('done' or 'failed'),
    ``reason`` ('' or why it failed), ``val_curve`` (epochs,) validation MSE per epoch in Ha^2
    (NaN if validation = 0), ``train_curve`` (epochs,) in Ha^2, ``best_val_mse`` (Ha^2),
    ``test_mae`` (Ha), ``test_pred`` (N_test,) in Ha, ``weights`` (float32 flat parameters,
    :func:`.cnn.flatten` order, if keep_weights, else empty), ``scale`` ([mu_x, sigma_x, mu_y,
    sigma_y]), ``wall_time`` (s: the batch's wall time / K, each model's share).
    A model whose training loss becomes non-finite is 'failed' (its curves, predictions and
    MAE NaN, ``reason`` says when); it stops training, and the others are unaffected.

    Execution: the K models are cut into chunks of at most ``chunk`` (default
    :data:`DEFAULT_CHUNK`, and at most ceil(K / workers)) models, each trained in lockstep as
    one :class:`.cnn.Ensemble`; ``workers`` threads (default: ``torch.get_num_threads()`` on
    the CPU, the cores; 1 on a GPU, with one chunk of all K) train the chunks concurrently,
    each with one intra-op thread; the caller's thread count is left as it was. Neither the
    chunking nor the caller's threads change any number (see the module docstring).
    """
    t0 = time.perf_counter()
    specs = list(specs)
    check(len(specs) >= 1, "specs", "need at least one spec")
    for s in specs:
        check(isinstance(s, FunctionalSpec), "specs", f"expected FunctionalSpec, got {type(s).__name__}")
    key = batch_key(specs[0])
    for s in specs[1:]:
        check(batch_key(s) == key, "specs", "all specs of one batch must share batch_key(spec) (dataset, system, "
              "input, target, batch_size, epochs, validation); group them with batch_key first")
    on_cpu = torch.device(device).type == "cpu"
    workers = (torch.get_num_threads() if on_cpu else 1) if workers is None else workers
    chunk = (DEFAULT_CHUNK if on_cpu else len(specs)) if chunk is None else chunk
    check(_is_int(workers) and workers >= 1, "workers", f"must be an integer >= 1, got {workers!r}")
    check(_is_int(chunk) and chunk >= 1, "chunk", f"must be an integer >= 1, got {chunk!r}")
    check(isinstance(profiles, Profiles), "profiles", f"expected Profiles, got {type(profiles).__name__}")

    s0, K = specs[0], len(specs)
    X, y = profiles.train[INPUTS[s0.input]], profiles.train[TARGETS[s0.target]]
    parts = [_partition(s, X.shape[0]) for s in specs]
    scale = np.stack([_scale(X[fit], y[fit]) for fit, _ in parts])   # (K, 4)
    size = min(chunk, -(-K // workers))
    chunks = [list(range(i, min(i + size, K))) for i in range(0, K, size)]

    def run(ks):
        return _train_chunk([specs[k] for k in ks], [parts[k] for k in ks], scale[ks], profiles, device)

    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(min(workers, len(chunks)), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            results = list(pool.map(run, chunks))
    finally:
        torch.set_num_threads(threads)      # torch's default for threads started later, as before
    wall = (time.perf_counter() - t0) / K
    rows = [row for res in results for row in res]
    for row in rows:
        row["wall_time"] = wall
    return rows


def _train_chunk(specs: list[FunctionalSpec], parts: list, scale: np.ndarray, profiles: Profiles,
                 device) -> list[dict]:
    """Train one chunk of models in lockstep (see :func:`train_batch`); rows without wall_time.

    Every model has its own tensors (parameters, Adam state, scaled data, minibatches) and
    its own operations; the chunk shares the loop, one backward call (the sum of the models'
    losses: each gradient is exactly its own model's) and one optimiser (a parameter group
    per model). So a model's arithmetic is the same whatever the chunk it is trained in.
    """
    s0 = specs[0]
    K, epochs, batch = len(specs), s0.epochs, s0.batch_size
    inp, tgt = INPUTS[s0.input], TARGETS[s0.target]
    X, y = profiles.train[inp], profiles.train[tgt]
    X_test, y_test = profiles.test[inp], profiles.test[tgt]

    def tensor(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)

    ensemble = cnn.Ensemble(X.shape[1], [torch.Generator().manual_seed(init_seed(s)) for s in specs], device=device)
    models, data = list(ensemble.members), []
    for spec, (fit, val), (mu_x, s_x, mu_y, s_y) in zip(specs, parts, scale):
        Xk = tensor((X - mu_x) / s_x)
        yk = tensor((y - mu_y) / s_y)
        data.append({"X": Xk, "y": yk, "fit": torch.as_tensor(fit, device=device),
                     "X_val": tensor((X[val] - mu_x) / s_x), "y_val": yk[torch.as_tensor(val, device=device)],
                     "X_test": tensor((X_test - mu_x) / s_x), "mu_y": tensor(mu_y), "s_y": tensor(s_y),
                     "var": float(s_y) ** 2, "order": torch.Generator().manual_seed(order_seed(spec))})
    opt = torch.optim.Adam([{"params": list(m.parameters()), "lr": s.lr} for m, s in zip(models, specs)],
                           betas=(0.9, 0.999), eps=1e-8, fused=True)
    n_fit, n_val = parts[0][0].size, parts[0][1].size

    train_curve = np.full((K, epochs), np.nan)
    val_curve = np.full((K, epochs), np.nan)
    active = [True] * K
    reasons = [""] * K
    for epoch in range(epochs):
        live = [k for k in range(K) if active[k]]
        orders = {k: data[k]["fit"][torch.randperm(n_fit, generator=data[k]["order"]).to(device)] for k in live}
        sse = dict.fromkeys(live, 0.0)
        for start in range(0, n_fit, batch):
            if not live:
                break
            losses = {}
            for k in live:
                idx = orders[k][start:start + batch]
                pred = models[k](data[k]["X"].index_select(0, idx))
                losses[k] = ((pred - data[k]["y"].index_select(0, idx)) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            torch.stack(list(losses.values())).sum().backward()
            for k, loss in losses.items():
                value = float(loss.detach())
                sse[k] += value * len(orders[k][start:start + batch])
                if not math.isfinite(value):
                    active[k] = False
                    reasons[k] = (f"non-finite training loss in epoch {epoch + 1} "
                                  f"(learning rate {specs[k].lr:g}); lower the learning rate")
                    for p in models[k].parameters():
                        p.grad = None                  # Adam skips it from now on
            live = [k for k in live if active[k]]
            opt.step()
        with torch.no_grad():
            for k in live:
                train_curve[k, epoch] = sse[k] / n_fit * data[k]["var"]
                if n_val:
                    d = (models[k](data[k]["X_val"]) - data[k]["y_val"]).double()
                    val_curve[k, epoch] = float((d * d).mean()) * data[k]["var"]

    rows = []
    for k, spec in enumerate(specs):
        pred = np.full(len(y_test), np.nan)
        if active[k]:
            with torch.no_grad():
                out = models[k](data[k]["X_test"]) * data[k]["s_y"] + data[k]["mu_y"]
            pred = out.double().cpu().numpy()
            if not np.all(np.isfinite(pred)):
                active[k], reasons[k] = False, "non-finite test prediction"
        keep = spec.keep_weights and active[k]
        rows.append({
            "id": spec.id,
            "status": "done" if active[k] else "failed",
            "reason": reasons[k],
            "val_curve": val_curve[k] if active[k] else np.full(epochs, np.nan),
            "train_curve": train_curve[k] if active[k] else np.full(epochs, np.nan),
            "best_val_mse": float(np.min(val_curve[k])) if n_val and active[k] else math.nan,
            "test_mae": float(np.mean(np.abs(pred - y_test))) if active[k] else math.nan,
            "test_pred": pred if active[k] else np.full(len(y_test), np.nan),
            "weights": models[k].flat().cpu().numpy().astype(np.float32) if keep else np.zeros(0, np.float32),
            "scale": scale[k].copy(),
        })
    return rows
