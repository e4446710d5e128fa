"""The "functional" task kind: one CNN training of one learned functional (seed 002, 2.3).

    kind = "functional"
    name = "functionals_grid"
    dataset = "data/dataset1d.h5"        # a solve1d results file (qpnn-hpc run jobs/dataset1d.toml)
    systems = ["atoms", "molecules"]     # which datasets of the file
    inputs = ["n", "V"]                  # n(x) (one-electron density) or V(x)
    targets = ["E", "T", "A", "Eg"]
    repeats = 2                          # repeat index 0 .. repeats-1 (enters every seed)
    [train]                              # FunctionalSpec fields shared by all tasks
    epochs = 200
    validation = 0.2
    [grid]                               # FunctionalSpec field -> list of values
    lr = [0.00032, 0.00064, 0.00128, 0.00256, 0.00512]
    batch_size = [1, 10, 25, 50, 100]

``best_from = "results/functionals_grid.h5"`` adds, per functional (system, input,
target), the (lr, batch_size) of that grid-search file with the lowest validation MSE
averaged over its repeats (seed 002's score); its rows are labelled ``choice = "best"``
(the configured ones ``"fixed"``, both ``"fixed+best"`` when they coincide).

Expansion order: system, input, target, configuration, repeat. The dataset path is
taken as given, relative to the working directory, and enters the ids. Tasks that share a
dataset, system, input, batch size, epochs and validation fraction train as one batched
ensemble (``--batch``, default 200 models): targets, learning rates and repeats may differ.

Rows: ``val_curve``, ``train_curve`` (Ha^2 per epoch), ``best_val_mse`` (Ha^2),
``test_mae`` (Ha), ``test_pred`` (Ha, one per test system), ``scale`` and, for tasks with
``keep_weights``, the trained ``weights`` (float32, :func:`qpnn_hpc.functionals.cnn.flatten`
order): :func:`qpnn_hpc.functionals.predict.load` rebuilds the functional from a row.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qpnn_hpc.campaigns.kinds import Column, Kind
from qpnn_hpc.config import ConfigError, check, field, from_dict
from qpnn_hpc.functionals import cnn
from qpnn_hpc.functionals.train import INPUTS, SYSTEMS, TARGETS, FunctionalSpec, Profiles, train_batch

RESERVED = {"dataset": "dataset = ...", "system": "systems = [...]", "input": "inputs = [...]",
            "target": "targets = [...]", "repeat": "repeats = N",
            "keep_weights": "keep_weights = N (the first N repeats keep their trained weights)"}


@dataclass(frozen=True)
class FunctionalCampaignConfig:
    """A functional campaign file (jobs/functionals_*.toml)."""

    name: str = field(help="campaign name (free text)")
    dataset: str = field(help="a solve1d results file (qpnn-hpc run jobs/dataset1d.toml), relative to the "
                              "working directory")
    systems: tuple[str, ...] = field(SYSTEMS, help="datasets of the file to learn from: 'atoms', 'molecules'")
    inputs: tuple[str, ...] = field(tuple(INPUTS), help="profiles the CNN reads: 'n' (n1), 'V'")
    targets: tuple[str, ...] = field(tuple(TARGETS), help="properties learned: 'E', 'T', 'A', 'Eg'")
    repeats: int = field(1, help="trainings per configuration (repeat 0 .. repeats-1)")
    keep_weights: int = field(0, help="repeats 0 .. N-1 of every configuration keep their trained weights in "
                                      "the results file (1.5 MB each on seed 002's grid)")
    description: str = field("", help="free text")
    train: dict = field(default_factory=dict, help="FunctionalSpec fields shared by all tasks: lr, batch_size, "
                                                   "epochs, validation, keep_weights")
    grid: dict = field(default_factory=dict, help="FunctionalSpec field -> list of values (a grid search)")
    best_from: str = field("", help="a grid-search results file of this kind: adds each functional's best "
                                    "(lr, batch_size), lowest validation MSE averaged over repeats")

    def __post_init__(self):
        check(self.repeats > 0, "repeats", f"must be > 0, got {self.repeats}")
        check(0 <= self.keep_weights <= self.repeats, "keep_weights", f"must be in 0 .. repeats, got {self.keep_weights}")
        for name, values, valid in (("systems", self.systems, SYSTEMS), ("inputs", self.inputs, tuple(INPUTS)),
                                    ("targets", self.targets, tuple(TARGETS))):
            check(len(values) > 0, name, f"empty: give at least one of {list(valid)}")
            for v in values:
                check(v in valid, name, f"unknown {v!r}; use any of {list(valid)}")
        for where, table in (("train", self.train), ("grid", self.grid)):
            for key in table:
                check(key not in RESERVED, f"{where}.{key}", f"set by the campaign; use {RESERVED.get(key)}")
        for key, values in self.grid.items():
            check(isinstance(values, list) and len(values) > 0, f"grid.{key}", "must be a non-empty list of values")


def grid_scores(table: dict) -> dict:
    """(system, input, target) -> {(lr, batch_size): the lowest validation MSE (Ha^2) of each
    run, averaged over the runs} of a grid search's rows (validation > 0); a failed or
    pending run scores inf (seed 002's score, Fig. 8)."""
    from qpnn_hpc.campaigns import store
    raw: dict = {}
    for i, s in enumerate(table["spec"]):
        if s["validation"] > 0:
            v = table["best_val_mse"][i] if table["status"][i] == store.DONE else np.inf
            raw.setdefault((s["system"], s["input"], s["target"]), {}).setdefault((s["lr"], s["batch_size"]), []).append(v)
    return {k: {c: float(np.mean(v)) for c, v in cfg.items()} for k, cfg in raw.items()}


def best_config(scores: dict) -> tuple:
    """The (lr, batch_size) of the lowest score (ties: the smaller lr, then batch)."""
    return min(scores, key=lambda c: (scores[c], c))


def _best_configs(path: str, where: str) -> dict:
    """(system, input, target) -> its best (lr, batch_size) in a complete grid-search results file."""
    from qpnn_hpc.campaigns import store
    t = store.read_table(path) if Path(path).exists() else None
    check(t is not None, where, f"no such file {path!r}: run the grid search first")
    check(t["kind"] == "functional", where, f"{path!r} is a {t['kind']!r} results file, not a functional one")
    missing = int((t["status"] == store.PENDING).sum())
    check(missing == 0, where, f"{missing} tasks of {path!r} are pending: finish the grid search first")
    return {key: best_config(cfg) for key, cfg in grid_scores(t).items()}


def _points(config: FunctionalCampaignConfig) -> list[dict]:
    """The configured FunctionalSpec fields of each grid point (train table + grid values)."""
    keys = sorted(config.grid)
    return [{**config.train, **dict(zip(keys, p))} for p in itertools.product(*(config.grid[k] for k in keys))]


def _pair(fields: dict) -> tuple:
    """(lr, batch_size) of a set of FunctionalSpec fields, defaults filled in."""
    d = {f.name: f.default for f in dataclasses.fields(FunctionalSpec)}
    return (fields.get("lr", d["lr"]), fields.get("batch_size", d["batch_size"]))


def _configs(config: FunctionalCampaignConfig, best: dict, key: tuple) -> list[tuple[dict, str]]:
    """The (fields, choice) of one functional: the configured points, and the grid's best."""
    out = [(f, "fixed") for f in _points(config)]
    if not best:
        return out
    check(key in best, "best_from", f"{config.best_from!r} has no grid search for {key[2]}[{key[1]}] on {key[0]}")
    lr, batch = best[key]
    for i, (f, _) in enumerate(out):
        if _pair(f) == (lr, batch):
            out[i] = (f, "fixed+best")
            return out
    return out + [({**config.train, "lr": lr, "batch_size": batch}, "best")]


def _expand(config: FunctionalCampaignConfig) -> tuple[list, list]:
    best = _best_configs(config.best_from, "best_from") if config.best_from else {}
    specs, choices = [], []
    for key in itertools.product(config.systems, config.inputs, config.targets):
        system, inp, target = key
        for fields, choice in _configs(config, best, key):
            for repeat in range(config.repeats):
                data = {**fields, "dataset": config.dataset, "system": system, "input": inp, "target": target,
                        "repeat": repeat, "keep_weights": repeat < config.keep_weights}
                try:
                    specs.append(from_dict(FunctionalSpec, data))
                except ConfigError as e:
                    raise ConfigError(f"{target}[{inp}] on {system}: {e}") from None
                choices.append(choice)
    return specs, choices


def expand(config: FunctionalCampaignConfig, base: Path):
    """All specs, in the order system, input, target, configuration, repeat."""
    return config.name, _expand(config)[0]


@lru_cache(maxsize=8)
def _profiles(path: str, system: str, mtime: float) -> Profiles:
    from qpnn_hpc.exact1d.dataset import read
    data = read(path, system)
    return Profiles(data["x"], data["train"], data["test"])


def profiles(path: str, system: str) -> Profiles:
    """One dataset of a solve1d results file, read once per process (and again if it changed)."""
    p = Path(path)
    check(p.exists(), "dataset", f"no such file {path!r}: make it with `qpnn-hpc run jobs/dataset1d.toml "
                                 "--out data/dataset1d.h5` (paths are relative to the working directory)")
    return _profiles(str(p), system, p.stat().st_mtime)


def batch_key(spec: FunctionalSpec) -> str:
    """One ensemble: one dataset, system, input, batch size, epochs and validation fraction."""
    return repr((spec.dataset, spec.system, spec.input, spec.batch_size, spec.epochs, spec.validation))


def run(specs, device, comm=None) -> list[dict]:
    """Train the specs (one batch key); rows in spec order. Targets may differ: the specs
    are trained as one ensemble per target (train_batch's own batch key)."""
    data = profiles(specs[0].dataset, specs[0].system)
    rows: list = [None] * len(specs)
    groups: dict = {}
    for i, s in enumerate(specs):
        groups.setdefault(s.target, []).append(i)
    for idx in groups.values():
        for i, row in zip(idx, train_batch([specs[i] for i in idx], data, device)):
            rows[i] = row
    return rows


def cost(spec: FunctionalSpec) -> float:
    """Minibatch steps per epoch dominate for small batches; the per-sample work for large ones."""
    return spec.epochs * (1.0 + 20.0 / spec.batch_size)


def columns(specs) -> list[Column]:
    epochs = max(s.epochs for s in specs)
    data = {s: profiles(specs[0].dataset, s) for s in {x.system for x in specs}}
    n_test = max(d.test["E1"].shape[0] for d in data.values())
    L = next(iter(data.values())).x.size
    cols = [Column("val_curve", shape=(epochs,), units="Hartree^2", description="validation MSE per epoch"),
            Column("train_curve", shape=(epochs,), units="Hartree^2", description="training MSE per epoch"),
            Column("best_val_mse", units="Hartree^2", description="lowest validation MSE over the epochs"),
            Column("test_mae", units="Hartree", description="MAE on the test split after the last epoch"),
            Column("test_pred", shape=(n_test,), units="Hartree", description="predictions on the test split"),
            Column("scale", shape=(4,), description="input mean and std, target mean (Ha) and std (Ha)")]
    keep = tuple(i for i, s in enumerate(specs) if s.keep_weights)
    if keep:
        cols.append(Column("weights", dtype="f4", shape=(cnn.parameter_count(L),), rows=keep,
                           description="trained CNN parameters, qpnn_hpc.functionals.cnn.flatten order"))
    return cols


def labels(config: FunctionalCampaignConfig, specs) -> dict:
    return {"system": np.array([s.system.encode() for s in specs], dtype="S16"),
            "input": np.array([s.input.encode() for s in specs], dtype="S4"),
            "target": np.array([s.target.encode() for s in specs], dtype="S4"),
            "lr": np.array([s.lr for s in specs], dtype="f8"),
            "batch_size": np.array([s.batch_size for s in specs], dtype="i4"),
            "repeat": np.array([s.repeat for s in specs], dtype="i4"),
            "choice": np.array([c.encode() for c in _expand(config)[1]], dtype="S16")}


def describe(table: dict, i: int) -> str:
    return (f"{table['target'][i]}[{table['input'][i]}] on {table['system'][i]}, lr {table['lr'][i]:g}, "
            f"batch {table['batch_size'][i]}, repeat {table['repeat'][i]}")


def attrs(specs) -> dict:
    data = profiles(specs[0].dataset, specs[0].system)
    return {"x": data.x, "dataset": specs[0].dataset}


def report(path, table, out):
    from qpnn_hpc.functionals.report import write_report
    return write_report(path, table, out)


KIND = Kind(name="functional", Config=FunctionalCampaignConfig, expand=expand, batch_key=batch_key, cost=cost,
            run=run, labels=labels, columns=columns, describe=describe, report=report, attrs=attrs,
            default_batch=200, what="training")
