"""The "solve1d" task kind: one system of seed 002's 1D datasets solved exactly (section 2.1).

    kind = "solve1d"
    name = "dataset1d"
    datasets = ["atoms", "molecules"]
    [grid]
    box = 14.0
    points_per_bohr = 12.0
    stencil = 13
    # solve_box = 24.0            # the converged-grid option (jobs/dataset1d_converged.toml)
    # solve_points_per_bohr = 28.0
    [atoms]
    train_points = 10
    [molecules]
    train_points = 50

One task = one system (:class:`~qpnn_hpc.exact1d.dataset.SystemSpec`); the tasks are the
datasets in order, each its train split then its test split, in storage order
(:func:`~qpnn_hpc.exact1d.dataset.dataset_specs`). All systems share one grid, so one
results file holds them all: labels ``dataset`` (atoms, molecules), ``split`` (train,
test) and ``parameters`` (Z, alpha, r); results the profiles ``V``, ``n1``, ``n2`` and the
scalars ``E1`` ... ``U2``, what each row states of its accuracy (``E1_grid_error``,
``E2_grid_error``, ``bound``) and its exact Kohn-Sham data (``v_s``, ``v_H``, ``v_xc``,
``eps_s`` ... ``E_xc``, the window ``ks_x_min``, ``ks_x_max``)
(:data:`~qpnn_hpc.exact1d.dataset.DESCRIPTIONS`). Read one dataset back with
:func:`qpnn_hpc.exact1d.dataset.read` (it also gives the worst case over the rows).

The solver is deterministic per system: the numbers do not depend on the rank count, and
it wants one BLAS thread per rank (the CLI sets OMP_NUM_THREADS=1 unless already set).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qpnn_hpc.campaigns.kinds import Column, Kind
from qpnn_hpc.config import check, field
from qpnn_hpc.exact1d import dataset as d1

# Defaults are seed 002's (d1.DEFAULT_*, *_TRAIN_POINTS; a test checks they agree).


@dataclass(frozen=True)
class GridConfig:
    """The real-space grid shared by all systems (seed 002: 14 bohr, 12 points per bohr, 13-point stencil)."""

    box: float = field(14.0, help="box length (bohr): x in [-box/2, box/2], hard walls")
    points_per_bohr: float = field(12.0, help="grid points per bohr; box * points_per_bohr must be an integer")
    stencil: int = field(13, help="finite-difference points of the second derivative: 3, 5, 7, 9, 11 or 13")
    solve_box: float | None = field(None, omit_default=True,
                                    help="converged-grid option: box length (bohr) solved on, >= box, e.g. 24; "
                                         "profiles are stored resampled onto the box/points_per_bohr grid")
    solve_points_per_bohr: float | None = field(None, omit_default=True,
                                                help="converged-grid option: points per bohr solved on, e.g. 28")

    def __post_init__(self):  # SystemSpec's checks name the field and the fix
        d1.SystemSpec("atom", 1.0, 1.0, box=self.box, points_per_bohr=self.points_per_bohr, stencil=self.stencil,
                      solve_box=self.solve_box, solve_points_per_bohr=self.solve_points_per_bohr)

    @property
    def grid_kw(self) -> dict:
        return dict(box=self.box, points_per_bohr=self.points_per_bohr, stencil=self.stencil,
                    solve_box=self.solve_box, solve_points_per_bohr=self.solve_points_per_bohr)


def _check_train_points(n: int, name: str) -> None:
    check(n >= 2, name, f"must be >= 2 (the test split takes the {n} - 1 midpoints), got {n}")


@dataclass(frozen=True)
class AtomsConfig:
    """V = -Z/(|x| + alpha), Z in [0.5, 2], alpha in [0.65, 1] (seed 002, eq. 1)."""

    train_points: int = field(10, help="values of Z and of alpha: train = the n x n grid, test = the "
                                       "(n-1) x (n-1) cell midpoints (seed 002: 10, i.e. 100 and 81)")

    def __post_init__(self):
        _check_train_points(self.train_points, "atoms.train_points")


@dataclass(frozen=True)
class MoleculesConfig:
    """Two wells at +-r/2, Z = 1, alpha = 0.75, r in [2, 6] bohr (seed 002, eq. 2)."""

    train_points: int = field(50, help="values of r: train = n values, test = the n - 1 midpoints "
                                       "(seed 002: 50 and 49)")

    def __post_init__(self):
        _check_train_points(self.train_points, "molecules.train_points")


@dataclass(frozen=True)
class DatasetCampaignConfig:
    """A dataset campaign file (jobs/dataset1d.toml)."""

    name: str = field("dataset1d", help="campaign name (free text)")
    datasets: tuple[str, ...] = field(d1.KINDS, help="datasets to generate: 'atoms', 'molecules'")
    grid: GridConfig = field(default_factory=GridConfig, help="[grid] table: box, points_per_bohr, stencil, "
                                                              "solve_box, solve_points_per_bohr")
    atoms: AtomsConfig = field(default_factory=AtomsConfig, help="[atoms] table: train_points")
    molecules: MoleculesConfig = field(default_factory=MoleculesConfig, help="[molecules] table: train_points")

    def __post_init__(self):
        check(len(self.datasets) > 0, "datasets", f"empty: give at least one of {list(d1.KINDS)}")
        for d in self.datasets:
            check(d in d1.KINDS, "datasets", f"unknown dataset {d!r}; use any of {list(d1.KINDS)}")
        check(len(set(self.datasets)) == len(self.datasets), "datasets", f"{list(self.datasets)} "
              "names a dataset twice; list each once")


def expand(config: DatasetCampaignConfig, base: Path):
    g = config.grid
    specs = []
    for kind in config.datasets:
        n = getattr(config, kind).train_points
        for split in d1.SPLITS:
            specs += d1.dataset_specs(kind, split, train_points=n, **g.grid_kw)
    return config.name, specs


def _dataset_and_split(config: DatasetCampaignConfig):
    """(dataset, split) of each task, in campaign order."""
    out = []
    g = config.grid
    for kind in config.datasets:
        n = getattr(config, kind).train_points
        for split in d1.SPLITS:
            out += [(kind, split)] * len(d1.dataset_specs(kind, split, train_points=n, **g.grid_kw))
    return out


def labels(config: DatasetCampaignConfig, specs) -> dict:
    where = _dataset_and_split(config)
    return {"dataset": np.array([d.encode() for d, _ in where], dtype="S16"),
            "split": np.array([s.encode() for _, s in where], dtype="S8"),
            "parameters": np.array([[s.Z, s.alpha, s.r] for s in specs], dtype="f8")}


def columns(specs) -> list[Column]:
    points = specs[0].points
    units = {"n1": "1/bohr", "n2": "1/bohr"}
    cols = [Column(k, shape=(points,), units=units.get(k, "Hartree"), description=d1.DESCRIPTIONS[k])
            for k in d1.RESULT_PROFILE_KEYS]
    units = {"bound": "", "ks_x_min": "bohr", "ks_x_max": "bohr"}
    cols += [Column(k, dtype="i1" if k == "bound" else "f8", units=units.get(k, "Hartree"),
                    description=d1.DESCRIPTIONS[k]) for k in d1.RESULT_SCALAR_KEYS]
    return cols


def run(specs, device=None, comm=None) -> list[dict]:
    rows = []
    for spec in specs:
        res = d1.solve_system(spec)
        rows.append({"status": "done", "reason": "",
                     **{k: res[k] for k in d1.RESULT_PROFILE_KEYS + d1.RESULT_SCALAR_KEYS}})
    return rows


def cost(spec) -> float:
    """The two-electron solve dominates: (points solved on)^2 unknowns."""
    return float(len(spec.solve_grid())) ** 2


def describe(table: dict, i: int) -> str:
    Z, alpha, r = table["parameters"][i]
    return f"{table['dataset'][i]} {table['split'][i]}, Z={Z:g} alpha={alpha:g} r={r:g}"


#: Root attributes of the measured worst case over the finished rows (Hartree; a count).
SUMMARY = ("max_E1_grid_error", "max_E2_grid_error", "max_E2_grid_error_bound", "unbound_rows")


def summary(table: dict) -> dict:
    """The worst Richardson grid errors of E1 and E2 over the done rows (E2 also over the
    rows whose second electron is bound), and how many done rows are unbound (A not above
    its grid error): root attributes, rewritten when a run or a merge ends."""
    done = np.asarray(table["status"]) == 1
    if "E1_grid_error" not in table or not done.any():
        return {}
    bound = done & (np.asarray(table["bound"]) == 1)
    e1, e2 = np.asarray(table["E1_grid_error"], float), np.asarray(table["E2_grid_error"], float)
    return {"max_E1_grid_error": float(np.nanmax(e1[done])), "max_E2_grid_error": float(np.nanmax(e2[done])),
            "max_E2_grid_error_bound": float(np.nanmax(e2[bound])) if bound.any() else np.nan,
            "unbound_rows": float((done & ~bound).sum())}


def attrs(specs) -> dict:
    return {**d1.grid_attrs(specs[0]), "x": specs[0].grid()}


def report(path, table, out):
    from qpnn_hpc.exact1d.report import write_report
    return write_report(path, table, out)


KIND = Kind(name="solve1d", Config=DatasetCampaignConfig, expand=expand, batch_key=lambda s: s.spec_id(),
            cost=cost, run=run, labels=labels, columns=columns, describe=describe, report=report,
            attrs=attrs, what="system", libraries=(), summary=summary, summary_names=SUMMARY)
