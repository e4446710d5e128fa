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

``box``, ``points_per_bohr``, ``stencil``, ``train_points`` and the solve grid are
arguments of :func:`dataset_specs`.

What each row states of its own accuracy (:func:`solve_system`):

* ``E1_grid_error``, ``E2_grid_error`` (Ha): the estimated grid error |E(dx) - E(dx -> 0)|
  from one coarser solve in the same box (:data:`RICHARDSON_RATIO`: about 2/3 of the
  intervals, an even number so an atom's nucleus stays on the grid, a molecule's nuclei at
  the same fraction of a cell as on the solve grid: :meth:`SystemSpec.coarse_grid`), assuming
  E(dx) = E(0) + c dx^2: error = |E(dx) - E(dx_c)| dx^2 / (dx_c^2 - dx^2). Measured order
  (14 bohr box, 12 -> 24 -> 48 points per bohr): dx^2 for E1 and for bound E2 (the kink of
  |x| at the nucleus; successive differences fall by 4.0); the estimate from 8 and 12
  points per bohr is within 1 % of the extrapolated error (Z = 2, alpha = 0.65: 3.83 vs
  3.81 mHa). Where the second electron is unbound, E2 converges only as dx (the
  truncated stencil puts the wall a grid step outside the box; Z = 0.5, alpha = 1:
  differences 0.81 and 0.38 mHa): there the dx^2 estimate is about 2.5x too small. For
  molecules the nuclei at +-r/2 fall anywhere in a grid cell and the error depends on where
  (E1(r) carries ~1 mHa of grid-scale noise): the coarse grid puts them at the same place
  in a cell (:meth:`SystemSpec.coarse_grid`), and the estimate is then within 0.5x - 2.7x of
  the error extrapolated from 24 and 36 points per bohr (6 r values). Only the grid error:
  the box error is not in it (``bound`` below). Measured worst case, seed 002's grid: E1 3.83,
  E2 6.65 mHa (atoms, Z = 2, alpha = 0.65), 1.11 and 2.06 mHa (molecules); 24 bohr at 28
  points per bohr: 0.70 and 1.21 mHa. The engine writes root attributes before the run, so
  the worst case over the rows is computed from the columns (:func:`accuracy`, :func:`read`,
  the report), not stored as an attribute.
* ``bound`` (1/0): A > E1_grid_error + E2_grid_error. A box raises E2 (variational) and
  leaves E1 converged, so A > 0 in the box proves the second electron bound; where
  ``bound`` = 0, E2, A and Eg depend on the box (the electron leans on the walls).
* The exact Kohn-Sham data of the two-electron density (:mod:`qpnn_hpc.exact1d.kohn_sham`):
  ``v_s``, ``v_H``, ``v_xc`` and ``eps_s``, ``T_s``, ``T_c``, ``E_H``, ``E_x``, ``E_c``,
  ``E_xc``, with the window [``ks_x_min``, ``ks_x_max``] where v_s and v_xc are trusted.

Converged-grid option (``solve_box``, ``solve_points_per_bohr`` of :class:`SystemSpec`;
e.g. 24 bohr and 28 points per bohr, jobs/dataset1d_converged.toml): the system is
solved on that larger, finer grid; all scalars are its values, and the profiles are
stored on the storage grid (``box``, ``points_per_bohr``: seed 002's 169 points) so the
CNNs read converged labels from the seed's inputs: V exactly, n1, n2, v_H and v_xc by a
cubic spline through the solve grid's values (the spline passes through them, so where the
grids share points, e.g. 36 points per bohr, the stored values are the solve grid's), and
v_s = V + v_H + v_xc there (V's kink kept exact). The stored n2 integrates to 2 minus what
lies outside the storage box.

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

from qpnn_hpc.exact1d import kohn_sham as ks
from qpnn_hpc.exact1d import solver as solver1d
from qpnn_hpc.config import check, field, spec_hash

__all__ = [
    "ATOM_Z_RANGE", "ATOM_ALPHA_RANGE", "ATOM_TRAIN_POINTS", "MOLECULE_Z", "MOLECULE_ALPHA",
    "MOLECULE_R_RANGE", "MOLECULE_TRAIN_POINTS", "DEFAULT_BOX", "DEFAULT_POINTS_PER_BOHR",
    "DEFAULT_STENCIL", "KINDS", "SPLITS", "SystemSpec", "training_values", "test_values",
    "default_train_points", "dataset_specs", "solve_system", "read", "RICHARDSON_RATIO",
    "richardson_error", "accuracy",
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
#: What a row states of its own accuracy (module docstring), and the Kohn-Sham data.
ACCURACY_KEYS = ("E1_grid_error", "E2_grid_error", "bound")
KS_PROFILE_KEYS = ks.PROFILE_KEYS
KS_SCALAR_KEYS = ks.SCALAR_KEYS
#: Every result column of a row (profiles, then scalars).
RESULT_PROFILE_KEYS = PROFILE_KEYS + KS_PROFILE_KEYS
RESULT_SCALAR_KEYS = SCALAR_KEYS + ACCURACY_KEYS + KS_SCALAR_KEYS

#: Richardson's coarser grid: intervals / RICHARDSON_RATIO, rounded to an even number.
RICHARDSON_RATIO = 1.5

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
    "E1_grid_error": "estimated grid error |E1(dx) - E1(dx -> 0)| (Ha), Richardson as dx^2 from one coarser "
                     "solve (about 2/3 of the intervals); box error not included",
    "E2_grid_error": "estimated grid error |E2(dx) - E2(dx -> 0)| (Ha), as E1_grid_error; about 2.5x too small "
                     "where bound = 0 (E2 then converges as dx)",
    "bound": "1 if A > E1_grid_error + E2_grid_error (the second electron is bound, whatever the box), else 0 "
             "(E2, A and Eg depend on the box)",
    **ks.DESCRIPTIONS,
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
    solve_box: float | None = field(None, omit_default=True,
                                    help="box length (bohr) of the grid solved on, >= box (default: box); the "
                                         "profiles are resampled onto the box/points_per_bohr grid")
    solve_points_per_bohr: float | None = field(None, omit_default=True,
                                                help="points per bohr of the grid solved on (default: "
                                                     "points_per_bohr); solve_box * it must be an integer")

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
        if self.solve_box is not None:
            check(_finite(self.solve_box) and self.solve_box >= self.box, "solve_box",
                  f"must be a number >= box = {self.box:g} bohr (the stored grid lies inside the solved one), "
                  f"got {self.solve_box!r}")
        if self.solve_points_per_bohr is not None:
            check(_finite(self.solve_points_per_bohr) and self.solve_points_per_bohr > 0, "solve_points_per_bohr",
                  f"must be a number > 0, got {self.solve_points_per_bohr!r}")
        if self.resampled:
            intervals = self.solve_size * self.solve_density
            check(abs(intervals - round(intervals)) < 1e-9 * max(1.0, intervals) and round(intervals) >= 2,
                  "solve_points_per_bohr", f"solve_box * solve_points_per_bohr = {intervals!r} must be an "
                  "integer >= 2 (the number of grid intervals); e.g. solve_box = 24, solve_points_per_bohr = 28")
        coarse = len(self.coarse_grid())  # the smallest grid solved on (Richardson's)
        check(coarse >= self.stencil, "box",
              f"box = {self.box:g} bohr at {self.points_per_bohr:g} points per bohr gives {self.points} grid points "
              f"({coarse} on Richardson's coarser grid), fewer than the {self.stencil}-point stencil: raise box or "
              f"points_per_bohr (at least {self.stencil} points on the coarser grid), or use a smaller stencil")

    @property
    def points(self) -> int:
        """Number of grid points, box * points_per_bohr + 1 (both walls' neighbours included)."""
        return int(round(self.box * self.points_per_bohr)) + 1

    def grid(self) -> np.ndarray:
        """Uniform grid x (bohr) on [-box/2, box/2]; dx = 1 / points_per_bohr."""
        return np.linspace(-self.box / 2, self.box / 2, self.points)

    @property
    def solve_size(self) -> float:
        """Box length (bohr) of the grid solved on (``solve_box``, default ``box``)."""
        return self.box if self.solve_box is None else self.solve_box

    @property
    def solve_density(self) -> float:
        """Points per bohr of the grid solved on (``solve_points_per_bohr``, default ``points_per_bohr``)."""
        return self.points_per_bohr if self.solve_points_per_bohr is None else self.solve_points_per_bohr

    @property
    def resampled(self) -> bool:
        """True if the system is solved on another grid than the one stored (converged-grid option)."""
        return (self.solve_size, self.solve_density) != (self.box, self.points_per_bohr)

    def solve_grid(self) -> np.ndarray:
        """Uniform grid x (bohr) the system is solved on: [-solve_box/2, solve_box/2], 1/solve_points_per_bohr apart."""
        return np.linspace(-self.solve_size / 2, self.solve_size / 2,
                           int(round(self.solve_size * self.solve_density)) + 1)

    def coarse_grid(self) -> np.ndarray:
        """Richardson's coarser grid (bohr): same box as :meth:`solve_grid`, an even number of
        intervals (x = 0 stays a grid point) within 15 % of its intervals / :data:`RICHARDSON_RATIO`,
        the one that puts the nuclei (the kinks of V) at the same fraction of a grid cell as the
        solve grid does (to 0.01; then the nearest to the ratio). An atom's nucleus is on both
        grids; a molecule's at +-r/2 falls anywhere in a cell, and the error's constant c
        depends on where: with mismatched offsets one coarser solve gave estimates 0.005x to
        7x the actual error, with matched ones 0.5x to 2.7x (6 molecules, 12 points per bohr)."""
        L = self.solve_size
        intervals = int(round(L * self.solve_density))
        target = intervals / RICHARDSON_RATIO
        candidates = [m for m in range(2, intervals, 2) if abs(m - target) <= 0.15 * target]
        candidates = candidates or [max(2, 2 * int(round(target / 2)))]

        def offset(m: int) -> float:  # where the nucleus x = r/2 sits in its cell, mirror-symmetric
            t = ((self.r / 2 + L / 2) * m / L) % 1.0
            return min(t, 1.0 - t)

        mismatch = {m: round(abs(offset(m) - offset(intervals)), 2) for m in candidates}
        coarse = min(candidates, key=lambda m: (mismatch[m], abs(m - target)))
        return np.linspace(-L / 2, L / 2, coarse + 1)

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
                  stencil: int = DEFAULT_STENCIL, train_points: int | None = None,
                  solve_box: float | None = None,
                  solve_points_per_bohr: float | None = None) -> tuple[SystemSpec, ...]:
    """The systems of one dataset split, in storage order.

    ``kind``: 'atoms' (100 train, 81 test; Z outer, alpha inner) or 'molecules'
    (50 train, 49 test, increasing r). ``split``: 'train' or 'test'.
    ``train_points``: training values per parameter (default seed 002's, see
    :func:`default_train_points`; >= 2); the test split has the ``train_points - 1`` midpoints.
    ``solve_box``, ``solve_points_per_bohr``: the converged-grid option (:class:`SystemSpec`).
    """
    check(kind in KINDS, "kind", f"got {kind!r}; use one of {list(KINDS)}")
    check(split in SPLITS, "split", f"got {split!r}; use one of {list(SPLITS)}")
    n = default_train_points(kind) if train_points is None else train_points
    check(isinstance(n, int) and not isinstance(n, bool) and n >= 2, "train_points",
          f"must be an integer >= 2 (the test split takes the n - 1 midpoints), got {n!r}")
    values = training_values if split == "train" else test_values
    grid = dict(box=float(box), points_per_bohr=float(points_per_bohr), stencil=stencil,
                solve_box=None if solve_box is None else float(solve_box),
                solve_points_per_bohr=None if solve_points_per_bohr is None else float(solve_points_per_bohr))
    if kind == "atoms":
        return tuple(SystemSpec("atom", float(Z), float(a), **grid)
                     for Z in values(*ATOM_Z_RANGE, n)
                     for a in values(*ATOM_ALPHA_RANGE, n))
    return tuple(SystemSpec("molecule", MOLECULE_Z, MOLECULE_ALPHA, float(r), **grid)
                 for r in values(*MOLECULE_R_RANGE, n))


def richardson_error(E_fine: float, E_coarse: float, dx_fine: float, dx_coarse: float) -> float:
    r"""Estimated grid error :math:`|E(\Delta x) - E(0)|` (Ha) of the fine energy, assuming
    :math:`E(\Delta x) = E(0) + c\,\Delta x^2`: :math:`|E_f - E_c|\,\Delta x_f^2/(\Delta x_c^2 - \Delta x_f^2)`."""
    check(dx_coarse > dx_fine > 0, "dx_coarse", f"must exceed dx_fine = {dx_fine!r} > 0, got {dx_coarse!r}")
    return abs(E_fine - E_coarse) * dx_fine**2 / (dx_coarse**2 - dx_fine**2)


def _resample(x_from: np.ndarray, f: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """Cubic spline (not-a-knot) through the finite values of ``f``, evaluated on ``x_to``
    within their span; NaN outside it (a trust window stays a window)."""
    from scipy.interpolate import CubicSpline
    ok = np.isfinite(f)
    out = np.full(x_to.shape, np.nan)
    if ok.sum() < 4:
        return out
    xs = x_from[ok]
    inside = (x_to >= xs[0] - 1e-12) & (x_to <= xs[-1] + 1e-12)
    out[inside] = CubicSpline(xs, f[ok])(np.clip(x_to[inside], xs[0], xs[-1]))
    return out


def solve_system(spec: SystemSpec) -> dict:
    """Exact one- and two-electron ground states of one system, with their accuracy and
    exact Kohn-Sham data (pure; no I/O).

    Returns numpy arrays ``V``, ``n1``, ``n2`` (one value per storage grid point), floats
    ``E1``, ``E2``, ``E_V``, ``T``, ``A``, ``Eg``, ``E_V2``, ``T2``, ``U2`` (see
    :func:`qpnn_hpc.exact1d.solver.properties`), the accuracy ``E1_grid_error``,
    ``E2_grid_error`` (Ha) and ``bound`` (1/0), the Kohn-Sham arrays ``v_s``, ``v_H``,
    ``v_xc`` and floats ``eps_s`` ... ``ks_x_max`` (:mod:`qpnn_hpc.exact1d.kohn_sham`),
    ``parameters`` = [Z, alpha, r] and the string ``spec_id`` (module docstring: the
    Richardson estimate and the converged-grid option).
    """
    check(isinstance(spec, SystemSpec), "spec", f"expected a SystemSpec, got {type(spec).__name__}")
    xs = spec.solve_grid()
    Vs = spec.potential(xs)
    out = solver1d.properties(xs, Vs, spec.stencil)
    xc = spec.coarse_grid()
    coarse = solver1d.properties(xc, spec.potential(xc), spec.stencil)
    dx, dxc = solver1d.grid_spacing(xs), solver1d.grid_spacing(xc)
    for k in ("E1", "E2"):
        out[f"{k}_grid_error"] = richardson_error(out[k], coarse[k], dx, dxc)
    out["bound"] = int(out["A"] > out["E1_grid_error"] + out["E2_grid_error"])
    kso = ks.kohn_sham(xs, Vs, out["n2"], out["E1"], out["E2"], out["T2"], spec.stencil)
    out.update({k: kso[k] for k in KS_PROFILE_KEYS + KS_SCALAR_KEYS})
    if spec.resampled:
        x = spec.grid()
        out["V"] = spec.potential(x)
        for k in ("n1", "n2", "v_H", "v_xc"):
            out[k] = _resample(xs, out[k], x)
        out["v_s"] = out["V"] + out["v_H"] + out["v_xc"]
    else:
        out["V"] = Vs
    out["parameters"] = np.array([spec.Z, spec.alpha, spec.r])
    out["spec_id"] = spec.spec_id()
    return out


def grid_attrs(spec: SystemSpec) -> dict:
    """Root attributes that describe a dataset file's grid, units, gauge and accuracy columns."""
    attrs = {
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
        "solve_grid": (f"solved on x in [{-spec.solve_size / 2:g}, {spec.solve_size / 2:g}] bohr, "
                       f"{spec.solve_density:g} points per bohr" +
                       ("; profiles resampled onto the stored grid (V exact; n1, n2, v_H, v_xc by cubic spline; "
                        "v_s = V + v_H + v_xc), scalars from the solve grid" if spec.resampled else
                        " (the stored grid)")),
        "grid_error": (f"E1_grid_error, E2_grid_error: estimated |E(dx) - E(0)|, Richardson as dx^2 from one "
                       f"coarser solve in the same box, about 1/{RICHARDSON_RATIO:g} of the intervals (an even "
                       "number; a molecule's nuclei at the same place in a cell: SystemSpec.coarse_grid; "
                       f"{len(spec.coarse_grid())} points for the first system); box error not included; the "
                       "worst case over rows is computed by qpnn_hpc.exact1d.dataset.accuracy (read() returns it; "
                       "the report shows it)"),
        "bound": "1 if A > E1_grid_error + E2_grid_error; 0: E2, A and Eg depend on the box",
        "kohn_sham": ("exact KS data of the two-electron singlet (qpnn_hpc.exact1d.kohn_sham): phi = sqrt(n2/2), "
                      "v_s = eps_s + phi''/(2 phi) with the solver's stencil, eps_s = E2 - E1; v_s and v_xc NaN "
                      f"outside [ks_x_min, ks_x_max] (n2 >= {ks.DENSITY_FLOOR:g} max n2, >= {ks.WALL_MARGIN:g} "
                      "bohr from the walls)"),
    }
    return attrs


def accuracy(split: dict) -> dict:
    """The worst case over the rows of one split (``read``'s dicts; Ha): ``E1_grid_error``,
    ``E2_grid_error`` (max over all rows and over the bound rows), ``unbound`` (count),
    ``rows``. Empty for a file made before these columns existed."""
    if "bound" not in split:
        return {}
    bound = np.asarray(split["bound"]) == 1
    out = {"rows": int(bound.size), "unbound": int((~bound).sum())}
    for k in ("E1_grid_error", "E2_grid_error"):
        e = np.asarray(split[k], dtype=float)
        out[f"max_{k}"] = float(e.max()) if e.size else np.nan
        out[f"max_{k}_bound"] = float(e[bound].max()) if bound.any() else np.nan
    return out


def read(path, dataset: str) -> dict:
    """One dataset of a solve1d results file (``qpnn-hpc run jobs/dataset1d.toml``).

    Returns ``{"x": grid (bohr), "train": {...}, "test": {...}, "accuracy": {...}}``, each
    split a dict of arrays ``V``, ``n1``, ``n2`` (systems x points), the scalars (systems,)
    and ``parameters`` (systems x 3: Z, alpha, r), rows in storage order, plus the accuracy
    and Kohn-Sham columns where the file has them (files made before them do not);
    ``accuracy``: per split, :func:`accuracy` (the measured worst case). A file of another
    kind, a dataset it does not hold, or a row not done is a ConfigError naming the fix.
    """
    from qpnn_hpc.campaigns import store
    table = store.read_table(path)
    check(table["kind"] == "solve1d", "dataset",
          f"{str(path)!r} is a {table['kind']!r} results file, not a 1D dataset; make one with "
          "`qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5`")
    held = sorted(set(table["dataset"]))
    check(dataset in held, "dataset", f"{str(path)!r} holds {held}, not {dataset!r}")
    out = {"x": np.asarray(table["x"], dtype=float), "accuracy": {}}
    keys = PROFILE_KEYS + SCALAR_KEYS + tuple(k for k in RESULT_PROFILE_KEYS + RESULT_SCALAR_KEYS
                                              if k in table and k not in PROFILE_KEYS + SCALAR_KEYS)
    for split in SPLITS:
        rows = np.nonzero((table["dataset"] == dataset) & (table["split"] == split))[0]
        missing = int((table["status"][rows] != store.DONE).sum())
        check(missing == 0, "dataset", f"{missing} {dataset} {split} systems of {str(path)!r} are not done; "
              "finish the campaign first (rerun the same `qpnn-hpc run`; `qpnn-hpc status` shows why)")
        out[split] = {k: table[k][rows] for k in keys + ("parameters",)}
        out["accuracy"][split] = accuracy(out[split])
    return out
