"""Campaign files: systems x methods x hyperparameter grid x trials -> trial specs.

A campaign is a TOML file (``jobs/*.toml``)::

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

Expansion is the Cartesian product in a fixed order (system, method, grid point,
seed); each task is a :class:`~qpnn_hpc.trial.TrialSpec` with a stable id (a hash of
its canonical spec). Systems may override defaults for themselves with a nested
``[systems.overrides]`` table (same shape as ``[defaults]``).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, canonical_json, check, field, from_dict, read_toml, spec_hash
from .models import preset_table
from .trial import TrialSpec


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
    d[keys[-1]] = value


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass(frozen=True)
class Campaign:
    config: CampaignConfig
    specs: tuple[TrialSpec, ...]

    @property
    def hash(self) -> str:
        """Identity of the campaign: the hash of its task ids in order."""
        return spec_hash([s.id for s in self.specs])

    def resolved_json(self) -> str:
        from .config import to_dict
        return canonical_json(to_dict(self.config))


def expand(config: CampaignConfig) -> Campaign:
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
                base = copy.deepcopy(shared)
                for k, v in zip(grid_keys, point):
                    _set_dotted(base, k, v)
                for seed in range(config.trials):
                    data = {**base, "system": system, "method": method, "seed": seed}
                    try:
                        specs.append(TrialSpec.from_dict(data))
                    except ConfigError as e:
                        raise ConfigError(f"systems[{i}] ({system['name']}), method {method}: {e}") from None
    ids = [s.id for s in specs]
    check(len(set(ids)) == len(ids), "grid", "two tasks have the same spec; remove duplicate values")
    return Campaign(config, tuple(specs))


def load(path: str | Path) -> Campaign:
    """Read and expand a campaign TOML file; every error names the field."""
    return expand(from_dict(CampaignConfig, read_toml(path, "campaign file")))
