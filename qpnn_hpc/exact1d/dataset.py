r"""Seed 002's datasets of 1D softened atoms and diatomic molecules (section 2.1).

Hartree atomic units: x in bohr, energies in hartree, densities in 1/bohr.

* ``atoms``: :math:`V = -Z/(|x| + \alpha)`, Z in [0.5, 2], alpha in [0.65, 1]. Training:
  the 10 x 10 grid of ``np.linspace`` values (Z outer, alpha inner); test: the 9 x 9
  cell midpoints.
* ``molecules``: :math:`V = -Z/(|x - r/2| + \alpha) - Z/(|x + r/2| + \alpha)`, Z = 1,
  alpha = 0.75, r in [2, 6] bohr: 50 training values, 49 test midpoints.

Grid (default, seed 002): x in [-7, 7] bohr, 12 points per bohr (169 points), 13-point
stencil, hard walls. Gauge: V -> 0 at infinity (no constant shifts).

Accuracy of the default grid (benchmarks/convergence1d.py; against Richardson-extrapolated,
large-box energies): it does NOT meet seed 002's 0.8 mHa per particle everywhere.

* Grid density: the kink of |x| at each nucleus makes the error ~dx^2. At 12 points per
  bohr E1 is off by up to -3.8 mHa and E2 by -6.6 mHa (Z = 2, alpha = 0.65); 28 points
  per bohr meet the threshold at every corner of the parameter range. For molecules the
  kinks at +-r/2 fall at varying offsets from the grid, so E1(r) carries about 1 mHa of
  grid-scale noise (error from -1.1 to +0.55 mHa over the 50 training r).
* Box: E1 is converged in 14 bohr; E2 is not: +4.6 mHa for the hydrogen model (20 bohr
  needed). Where the second electron is unbound (A < 0 in 30 and 60 bohr boxes: Z below
  ~0.72 at alpha = 0.65, below ~0.88 at alpha = 1; 2-3 of the 10 training Z rows) E2, A
  and Eg depend on the box (A -> 0 as the box grows); at Z = 0.5 E2 is 70-100 mHa above
  its 50 bohr value.

``box``, ``points_per_bohr``, ``stencil`` and ``train_points`` are arguments of
:func:`dataset_specs`.

:func:`solve_system` is the pure per-system function (one spec in, arrays out); the
``solve1d`` task kind (:mod:`qpnn_hpc.exact1d.kind`) runs it as a campaign
(``qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5``), and :func:`read` gives
one dataset of that file back as arrays.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from qpnn_hpc.exact1d import solver as solver1d
from qpnn_hpc.config import check, field, spec_hash

__all__ = [
    "ATOM_Z_RANGE", "ATOM_ALPHA_RANGE", "ATOM_TRAIN_POINTS", "MOLECULE_Z", "MOLECULE_ALPHA",
    "MOLECULE_R_RANGE", "MOLECULE_TRAIN_POINTS", "DEFAULT_BOX", "DEFAULT_POINTS_PER_BOHR",
    "DEFAULT_STENCIL", "KINDS", "SPLITS", "SystemSpec", "training_values", "test_values",
    "default_train_points", "dataset_specs", "solve_system", "read",
]

ATOM_Z_RANGE = (0.5, 2.0)
ATOM_ALPHA_RANGE = (0.65, 1.0)
ATOM_TRAIN_POINTS = 10
MOLECULE_Z = 1.0
MOLECULE_ALPHA = 0.75
MOLECULE_R_RANGE = (2.0, 6.0)
MOLECULE_TRAIN_POINTS = 50

#: Seed 002's grid: a 14 bohr box, x in [-7, 7], 12 points per bohr (169 points).
DEFAULT_BOX = 14.0
DEFAULT_POINTS_PER_BOHR = 12.0
DEFAULT_STENCIL = 13

KINDS = ("atoms", "molecules")
SPLITS = ("train", "test")

#: Arrays of one system, per grid point (first) and scalars (second), in the files.
PROFILE_KEYS = ("V", "n1", "n2")
SCALAR_KEYS = ("E1", "E2", "E_V", "T", "A", "Eg", "E_V2", "T2", "U2")
PARAMETER_COLUMNS = ("Z", "alpha", "r")

DESCRIPTIONS = {
    "V": "external potential V(x) (Ha), gauge V -> 0 at infinity",
    "n1": "ground-state density of one electron (1/bohr), integral 1",
    "n2": "ground-state density of two electrons, opposite spins (1/bohr), integral 2",
    "E1": "one-electron ground-state energy (Ha)",
    "E2": "two-electron (singlet) ground-state energy (Ha)",
    "E_V": "one-electron external energy integral n1 V dx (Ha)",
    "T": "one-electron kinetic energy E1 - E_V (Ha)",
    "A": "electron affinity E1 - E2 (Ha)",
    "Eg": "fundamental gap E2 - 2 E1 (Ha)",
    "E_V2": "two-electron external energy integral n2 V dx (Ha)",
    "T2": "two-electron kinetic energy (Ha)",
    "U2": "two-electron interaction energy <1/(|x-x'|+1)> (Ha)",
    "parameters": "columns Z (e), alpha (bohr), r (bohr; 0 for atoms)",
    "spec_id": "sha256 prefix of the system spec's canonical JSON (qpnn_hpc.config.spec_hash)",
}


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """One 1D system of seed 002: potential parameters and grid (bohr, e)."""

    kind: Literal["atom", "molecule"] = field(help="'atom' (one well) or 'molecule' (two wells at +-r/2)")
    Z: float = field(help="nuclear charge of each well (e), > 0")
    alpha: float = field(help="softening length of each well (bohr), > 0")
    r: float = field(0.0, help="bond length (bohr): 0 for atoms, > 0 for molecules")
    box: float = field(DEFAULT_BOX, help="box length (bohr): x in [-box/2, box/2], hard walls")
    points_per_bohr: float = field(DEFAULT_POINTS_PER_BOHR,
                                   help="grid points per bohr; box * points_per_bohr must be an integer")
    stencil: int = field(DEFAULT_STENCIL, help="finite-difference points: 3, 5, 7, 9, 11 or 13")

    def __post_init__(self):
        check(self.kind in ("atom", "molecule"), "kind", f"got {self.kind!r}; use 'atom' or 'molecule'")
        check(_finite(self.Z) and self.Z > 0, "Z", f"nuclear charge must be a number > 0, got {self.Z!r}")
        check(_finite(self.alpha) and self.alpha > 0, "alpha",
              f"softening must be a number > 0 (bohr), got {self.alpha!r}")
        check(_finite(self.box) and self.box > 0, "box", f"must be a number > 0 (bohr), got {self.box!r}")
        if self.kind == "atom":
            check(self.r == 0, "r", f"an atom has no bond length: leave r = 0 (got {self.r!r}) "
                  "or use kind = 'molecule'")
        else:
            check(_finite(self.r) and 0 < self.r < self.box, "r",
                  f"bond length must be > 0 and < box = {self.box} bohr, got {self.r!r}")
        check(_finite(self.points_per_bohr) and self.points_per_bohr > 0, "points_per_bohr",
              f"must be a number > 0, got {self.points_per_bohr!r}")
        intervals = self.box * self.points_per_bohr
        check(abs(intervals - round(intervals)) < 1e-9 * max(1.0, intervals) and round(intervals) >= 2,
              "points_per_bohr", f"box * points_per_bohr = {intervals!r} must be an integer >= 2 "
              "(the number of grid intervals); pick e.g. a box that is a whole number of bohr")
        check(isinstance(self.stencil, int) and not isinstance(self.stencil, bool)
              and self.stencil in solver1d.STENCILS, "stencil",
              f"got {self.stencil!r}; use one of {sorted(solver1d.STENCILS)}")

    @property
    def points(self) -> int:
        """Number of grid points, box * points_per_bohr + 1 (both walls' neighbours included)."""
        return int(round(self.box * self.points_per_bohr)) + 1

    def grid(self) -> np.ndarray:
        """Uniform grid x (bohr) on [-box/2, box/2]; dx = 1 / points_per_bohr."""
        return np.linspace(-self.box / 2, self.box / 2, self.points)

    def potential(self, x: np.ndarray | None = None) -> np.ndarray:
        """External potential V(x) (Ha) on ``x`` (default :meth:`grid`)."""
        x = self.grid() if x is None else x
        if self.kind == "atom":
            return solver1d.softened_atom_potential(x, self.Z, self.alpha)
        return solver1d.softened_molecule_potential(x, self.Z, self.alpha, self.r)

    def spec_id(self) -> str:
        return spec_hash(self)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def training_values(lo: float, hi: float, count: int) -> np.ndarray:
    """``count`` equally spaced values from lo to hi, ends included."""
    return np.linspace(lo, hi, count)


def test_values(lo: float, hi: float, count: int) -> np.ndarray:
    """The count - 1 midpoints between consecutive training values."""
    t = training_values(lo, hi, count)
    return 0.5 * (t[1:] + t[:-1])


def default_train_points(kind: str) -> int:
    """Seed 002's training values per parameter: 10 for atoms (Z and alpha), 50 for molecules (r)."""
    check(kind in KINDS, "kind", f"got {kind!r}; use one of {list(KINDS)}")
    return ATOM_TRAIN_POINTS if kind == "atoms" else MOLECULE_TRAIN_POINTS


def dataset_specs(kind: str, split: str, box: float = DEFAULT_BOX,
                  points_per_bohr: float = DEFAULT_POINTS_PER_BOHR,
                  stencil: int = DEFAULT_STENCIL, train_points: int | None = None) -> tuple[SystemSpec, ...]:
    """The systems of one dataset split, in storage order.

    ``kind``: 'atoms' (100 train, 81 test; Z outer, alpha inner) or 'molecules'
    (50 train, 49 test, increasing r). ``split``: 'train' or 'test'.
    ``train_points``: training values per parameter (default seed 002's, see
    :func:`default_train_points`; >= 2); the test split has the ``train_points - 1`` midpoints.
    """
    check(kind in KINDS, "kind", f"got {kind!r}; use one of {list(KINDS)}")
    check(split in SPLITS, "split", f"got {split!r}; use one of {list(SPLITS)}")
    n = default_train_points(kind) if train_points is None else train_points
    check(isinstance(n, int) and not isinstance(n, bool) and n >= 2, "train_points",
          f"must be an integer >= 2 (the test split takes the n - 1 midpoints), got {n!r}")
    values = training_values if split == "train" else test_values
    grid = dict(box=float(box), points_per_bohr=float(points_per_bohr), stencil=stencil)
    if kind == "atoms":
        return tuple(SystemSpec("atom", float(Z), float(a), **grid)
                     for Z in values(*ATOM_Z_RANGE, n)
                     for a in values(*ATOM_ALPHA_RANGE, n))
    return tuple(SystemSpec("molecule", MOLECULE_Z, MOLECULE_ALPHA, float(r), **grid)
                 for r in values(*MOLECULE_R_RANGE, n))


def solve_system(spec: SystemSpec) -> dict:
    """Exact one- and two-electron ground states of one system (pure; no I/O).

    Returns numpy arrays ``V``, ``n1``, ``n2`` (one value per grid point), floats ``E1``,
    ``E2``, ``E_V``, ``T``, ``A``, ``Eg``, ``E_V2``, ``T2``, ``U2`` (see
    :func:`qpnn_hpc.exact1d.solver.properties`), ``parameters`` = [Z, alpha, r] and the
    string ``spec_id``.
    """
    check(isinstance(spec, SystemSpec), "spec", f"expected a SystemSpec, got {type(spec).__name__}")
    x = spec.grid()
    V = spec.potential(x)
    out = solver1d.properties(x, V, spec.stencil)
    out["V"] = V
    out["parameters"] = np.array([spec.Z, spec.alpha, spec.r])
    out["spec_id"] = spec.spec_id()
    return out


def grid_attrs(spec: SystemSpec) -> dict:
    """Root attributes that describe a dataset file's grid, units and gauge."""
    return {
        "units": "Hartree atomic units: x in bohr, energies in hartree (Ha), densities in 1/bohr",
        "grid": (f"uniform, x in [{-spec.box / 2:g}, {spec.box / 2:g}] bohr, {spec.points} points, "
                 f"{spec.points_per_bohr:g} points per bohr (dx = {1 / spec.points_per_bohr:.6g} bohr), "
                 "hard walls (psi = 0 outside the grid)"),
        "box": spec.box,
        "points_per_bohr": spec.points_per_bohr,
        "stencil": spec.stencil,
        "stencil_description": (f"{spec.stencil}-point central finite-difference second derivative "
                                "(iDEA's coefficients)"),
        "gauge": "V -> 0 at infinity",
        "interaction": "1/(|x - x'| + 1)",
        "integrals": "rectangle rule, integral f dx = dx * sum f(x_i)",
        "solver": "qpnn_hpc.exact1d.solver (exact diagonalisation; two electrons in the exchange-symmetric subspace)",
    }


def read(path, dataset: str) -> dict:
    """One dataset of a solve1d results file (``qpnn-hpc run jobs/dataset1d.toml``).

    Returns ``{"x": grid (bohr), "train": {...}, "test": {...}}``, each split a dict of
    arrays ``V``, ``n1``, ``n2`` (systems x points), the scalars (systems,) and
    ``parameters`` (systems x 3: Z, alpha, r), rows in storage order. A file of another
    kind, a dataset it does not hold, or a row not done is a ConfigError naming the fix.
    """
    from qpnn_hpc.campaigns import store
    table = store.read_table(path)
    check(table["kind"] == "solve1d", "dataset",
          f"{str(path)!r} is a {table['kind']!r} results file, not a 1D dataset; make one with "
          "`qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5`")
    held = sorted(set(table["dataset"]))
    check(dataset in held, "dataset", f"{str(path)!r} holds {held}, not {dataset!r}")
    out = {"x": np.asarray(table["x"], dtype=float)}
    for split in SPLITS:
        rows = np.nonzero((table["dataset"] == dataset) & (table["split"] == split))[0]
        missing = int((table["status"][rows] != store.DONE).sum())
        check(missing == 0, "dataset", f"{missing} {dataset} {split} systems of {str(path)!r} are not done; "
              "finish the campaign first (rerun the same `qpnn-hpc run`; `qpnn-hpc status` shows why)")
        out[split] = {k: table[k][rows] for k in PROFILE_KEYS + SCALAR_KEYS + ("parameters",)}
    return out
