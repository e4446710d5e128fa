"""The "trial" task kind: QPNN, QPNN+MS and MPNN trials (seed 001), a campaign's default kind.

A trial campaign file (``jobs/*.toml``; ``kind = "trial"`` or no ``kind``)::

    name = "demo"                      # campaign name (free text)
    description = "..."                # optional
    trials = 3                         # trial seeds 0 .. trials-1
    methods = ["qpnn", "mpnn"]         # any of qpnn, qpnn_ms, mpnn

    [defaults]                         # TrialSpec fields shared by all tasks
    model = "seed001"                  # a preset name or a [defaults.model] table
    [defaults.train]
    epochs = 500

    [grid]                             # hyperparameter grid: dotted TrialSpec paths -> lists
    "train.lr" = [1e-3, 3e-3]

    [[systems]]                        # one table per system: name + its parameters
    name = "hydrogen"

Expansion is the Cartesian product in a fixed order (system, method, grid point, seed);
each task is a :class:`~qpnn_hpc.inverse.trial.TrialSpec` with a stable id (a hash of its
canonical spec). Systems may override defaults for themselves with a nested
``[systems.overrides]`` table (same shape as ``[defaults]``). Trials that differ only in
their seed train as one batched model (``--batch K``).

Rows: the scalars of :class:`~qpnn_hpc.inverse.trial.TrialResult` (energies in Hartree) with
the quality diagnostics (:mod:`qpnn_hpc.inverse.quality`), the loss curve, the potential and
the density along the system's evaluation line, the anchor, and ``warnings``: the named
warnings of a done trial ("" for none; ``qpnn-hpc status`` counts and lists them).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qpnn_hpc.campaigns.kinds import Column, Kind
from qpnn_hpc.config import ConfigError, check, field
from qpnn_hpc.inverse import quality
from qpnn_hpc.inverse.models import preset_table
from qpnn_hpc.inverse.trial import SCALARS, TrialSpec, batch_key, build_system, run_trials


@dataclass(frozen=True)
class CampaignConfig:
    name: str = field(help="campaign name")
    systems: tuple[dict, ...] = field(help="[[systems]] tables: name and parameters (+ optional overrides)")
    methods: tuple[str, ...] = field(("mpnn",), help="methods to run on every system")
    trials: int = field(1, help="trials (seeds 0 .. trials-1) per system, method and grid point")
    description: str = field("", help="free text")
    defaults: dict = field(default_factory=dict, help="TrialSpec fields shared by all tasks")
    grid: dict = field(default_factory=dict, help="dotted TrialSpec path -> list of values")

    def __post_init__(self):
        check(self.trials > 0, "trials", f"must be > 0, got {self.trials}")
        check(len(self.systems) > 0, "systems", "empty: add at least one [[systems]] table")
        check(len(self.methods) > 0, "methods", "empty: give at least one method")
        for key, values in self.grid.items():
            check(isinstance(values, list), f"grid.{key}", f"must be a list of values, got {values!r}")
            check(len(values) > 0, f"grid.{key}", "empty list: give at least one value or remove the key")


# set per task by the campaign itself: [[systems]], methods, trials
RESERVED = {"system": "[[systems]] tables", "method": "methods = [...]", "seed": "trials = N (seeds 0..N-1)"}


def _tables(d: dict, where: str) -> dict:
    """``d`` with a model preset name replaced by its table (so that overrides and grid
    values change the preset's fields rather than replace it); reserved keys refused."""
    for key, instead in RESERVED.items():
        check(key not in d, f"{where}.{key}", f"set by the campaign; use {instead} instead")
    if isinstance(d.get("model"), str):
        d = dict(d, model=preset_table(d["model"], f"{where}.model"))
    return d


def _set_dotted(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    check(keys[0] not in RESERVED, f"grid.{dotted}", f"set by the campaign; use {RESERVED.get(keys[0])} instead")
    for k in keys[:-1]:
        sub = d.get(k)
        if sub is None:
            sub = d[k] = {}
        check(isinstance(sub, dict), f"grid.{dotted}", f"{k!r} is not a table")
        d = sub
    if isinstance(value, dict) and isinstance(d.get(keys[-1]), dict):  # a table changes the fields it
        d[keys[-1]] = _merge(d[keys[-1]], value)                       # names, the others stay
    else:
        d[keys[-1]] = value


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def expand(config: CampaignConfig, base: Path) -> tuple[str, list[TrialSpec]]:
    """All task specs, in the fixed order system, method, grid point, seed."""
    grid_keys = sorted(config.grid)
    points = list(itertools.product(*(config.grid[k] for k in grid_keys))) or [()]
    specs = []
    defaults = _tables(config.defaults, "defaults")
    for i, system in enumerate(config.systems):
        check(isinstance(system, dict) and "name" in system, f"systems[{i}]", "needs a name")
        system = dict(system)
        shared = _merge(defaults, _tables(system.pop("overrides", {}), f"systems[{i}].overrides"))
        for method in config.methods:
            for point in points:
                fields = copy.deepcopy(shared)
                for k, v in zip(grid_keys, point):
                    _set_dotted(fields, k, v)
                for seed in range(config.trials):
                    data = {**fields, "system": system, "method": method, "seed": seed}
                    try:
                        specs.append(TrialSpec.from_dict(data))
                    except ConfigError as e:
                        raise ConfigError(f"systems[{i}] ({system['name']}), method {method}: {e}") from None
    return config.name, specs


# ------------------------------------------------------------------------------ the kind

UNITS = {"energy": "Hartree", "energy_metropolis": "Hartree", "energy_err": "Hartree",
         "energy_exact": "Hartree", "eps": "Hartree", "anchor_value": "Hartree", "potential": "Hartree",
         "potential_true": "Hartree", "grid": "bohr", "anchor": "bohr",
         "loss_curve": "Hartree^2/bohr^2 (qpnn, qpnn_ms) or Hartree (mpnn)", "acceptance": "1", "rhat": "1",
         "density_line": "1 (relative to its maximum on the line)",
         **{name: units for name, (units, _) in quality.COLUMNS.items()}}
WARNINGS_BYTES = 512  # /results/warnings: the named warnings of a row, UTF-8


def cost(spec: TrialSpec) -> float:
    """Relative training cost of a task: epochs x points x inputs, doubled for the
    gradient losses (qpnn, qpnn_ms: a second backward pass). Only orders the units."""
    dim = build_system(spec).dim
    return spec.train.epochs * spec.train.points * dim * (2 if spec.method != "mpnn" else 1)


def columns(specs) -> list[Column]:
    epochs = max(s.train.epochs for s in specs)
    grid = max(s.eval.grid_points for s in specs)
    cols = [Column(n, units=UNITS.get(n, ""), description=quality.COLUMNS.get(n, ("", ""))[1])
            for n in SCALARS if n != "wall_time"]
    cols += [Column("loss_curve", shape=(epochs,), units=UNITS["loss_curve"])]
    cols += [Column(n, shape=(grid,), units=UNITS[n])
             for n in ("grid", "potential", "potential_true", "density_line")]
    cols += [Column("anchor", shape=(3,), units="bohr")]
    cols += [Column("warnings", dtype=f"S{WARNINGS_BYTES}", description="named warnings of a done trial")]
    return cols


def labels(config, specs) -> dict:
    return {"system": np.array([s.system["name"].encode() for s in specs], dtype="S64"),
            "method": np.array([s.method.encode() for s in specs], dtype="S16")}


def run(specs, device, comm=None) -> list[dict]:
    rows = []
    for r in run_trials(specs, device, comm):
        row = {k: getattr(r, k) for k in SCALARS if k != "wall_time"}
        row.update(status=r.status, reason=r.reason, loss_curve=r.loss_curve, grid=r.grid,
                   potential=r.potential, potential_true=r.potential_true, anchor=np.asarray(r.anchor),
                   density_line=r.density_line,
                   warnings=r.warnings.encode()[:WARNINGS_BYTES].decode("utf-8", "ignore").encode())
        rows.append(row)
    return rows


def describe(table: dict, i: int) -> str:
    return f"{table['system'][i]}, {table['method'][i]}"


def report(path, table, out):
    from qpnn_hpc.inverse.report import write_report
    return write_report(path, table, out)


KIND = Kind(name="trial", Config=CampaignConfig, expand=expand, batch_key=batch_key, cost=cost, run=run,
            labels=labels, columns=columns, describe=describe, report=report, spreads_over_ranks=True,
            what="trial")
