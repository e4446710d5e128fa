"""Target systems: what |psi| (or the density) and, where known, V are.

Hartree atomic units (hbar = m_e = e = 1): lengths in bohr, energies in Hartree.

Every system implements one small interface (:class:`System`):

* ``dim``, ``geometry`` ("cartesian": x in R^D; "radial": x = (r,) with the 3D
  radial Laplacian), ``box`` (the sampling box, one (lo, hi) per input);
* ``psi(x)`` = |psi(x)| (normalised where known), ``log_density(x)`` = the log of
  the Metropolis target (|psi|^2 in Cartesian coordinates, 4 pi r^2 |psi|^2 radially);
* ``kinetic_local(x)`` = Lap|psi| / |psi| (analytic where known, autograd otherwise),
  so that the local energy of a trial potential U is
  E(x) = -1/2 Lap|psi|/|psi| + U(x)       (seed 001 eqs. 2-3);
* where known: ``potential(x)`` (the true V), ``exact_energy``, ``anchor`` (a point
  r0 and V(r0), the gauge-fixing value of seed 000 eq. 5).

Systems are built from plain data with :func:`make_system` (name + params), the
way a campaign file names them.
"""
from __future__ import annotations

import abc
import math
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from qpnn_hpc.inverse import autodiff
from qpnn_hpc.atoms.densities import data_file
from qpnn_hpc.config import ConfigError, check, field, from_dict


class System(abc.ABC):
    """Interface every target system implements (see the module docstring)."""

    name: str = "system"
    dim: int = 1
    geometry: str = "cartesian"          # "cartesian" or "radial" (3D radial Laplacian)
    box: tuple = ((-5.0, 5.0),)          # sampling box: (lo, hi) per network input
    exact_energy: Optional[float] = None  # exact eigenvalue E (Hartree), where known
    default_anchor: Optional[tuple] = None  # r0 (bohr) used when a spec names none

    @abc.abstractmethod
    def psi(self, x: torch.Tensor) -> torch.Tensor:
        """|psi(x)|, x of shape (..., dim) -> (...)."""

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """Log of the Metropolis target density (up to a constant)."""
        logp = 2.0 * torch.log(self.psi(x))
        if self.geometry == "radial":
            logp = logp + 2.0 * torch.log(x[..., 0].abs())
        return logp

    def kinetic_local(self, x: torch.Tensor) -> torch.Tensor:
        """Lap|psi|/|psi| at x (1/bohr^2). Default: autograd of :meth:`psi`."""
        lap = (autodiff.radial_laplacian if self.geometry == "radial" else autodiff.laplacian)
        return lap(self.psi, x) / self.psi(x)

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """The true potential V(x) (Hartree). Only where :attr:`has_potential`."""
        raise ConfigError(f"system {self.name!r} has no known potential; give the anchor value explicitly")

    @property
    def has_potential(self) -> bool:
        return type(self).potential is not System.potential

    def anchor(self, point: Optional[tuple] = None, value: Optional[float] = None) -> tuple[tuple, float]:
        """The gauge anchor (r0, V(r0)): ``point`` defaults to :attr:`default_anchor`,
        ``value`` to the true V(r0). Raises ConfigError for a point outside the box."""
        given = point is not None
        point = tuple(float(p) for p in (point if given else self.default_anchor))
        where = "loss.anchor" if given else f"loss.anchor (unset: system {self.name!r}'s default)"
        check(len(point) == self.dim, where,
              f"needs {self.dim} coordinate(s) for system {self.name!r}, got {list(point)}")
        for (lo, hi), p in zip(self.box, point):
            check(lo <= p <= hi, where,
                  f"point {list(point)} lies outside the sampling box {list(map(list, self.box))}; "
                  "choose a point inside it")
        if value is None:
            value = float(self.potential(torch.tensor(point, dtype=torch.float64)))
            check(math.isfinite(value), where, f"V at {list(point)} is {value} (a singularity); "
                  "choose another point")
        check(math.isfinite(value), "loss.anchor_value", f"got {value}; give a finite value (Hartree)")
        return point, float(value)

    def line(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """An evaluation cut: abscissa s (n,) and points (n, dim) along the first axis."""
        lo, hi = self.box[0]
        s = np.linspace(lo, hi, n)
        pts = np.zeros((n, self.dim))
        pts[:, 0] = s
        return s, pts


# ----------------------------------------------------------------------------- analytic

@dataclass(frozen=True)
class HarmonicOscillatorParams:
    dim: int = field(1, help="number of Cartesian dimensions D")
    omega: float = field(1.0, help="angular frequency omega (Hartree)")
    levels: tuple[int, ...] = field((0,), help="quantum number n_i per axis (length dim)")
    half_width: float = field(5.0, help="sampling box [-half_width, half_width]^D (bohr)")

    def __post_init__(self):
        check(self.dim >= 1, "system.dim", "must be >= 1")
        check(self.omega > 0, "system.omega", "must be > 0")
        check(len(self.levels) == self.dim, "system.levels", f"needs one level per axis ({self.dim})")
        check(all(n >= 0 for n in self.levels), "system.levels", "levels must be >= 0")
        check(self.half_width > 0, "system.half_width", "must be > 0")


class HarmonicOscillator(System):
    """Harmonic oscillator V = omega^2 |x|^2 / 2 in D dimensions, product state
    psi = prod_i omega^(1/4) phi_{n_i}(sqrt(omega) x_i) with the normalised Hermite functions
    phi_n(y) = H_n(y) exp(-y^2/2) / sqrt(2^n n! sqrt(pi)), E = omega (sum n_i + D/2) (Hartree).
    Every level's classical turning point sqrt((2n+1)/omega) must lie inside the box.

    Away from the nodes Lap psi / psi = omega^2 |x|^2 - omega (2 sum n_i + D)  (1/bohr^2).
    The 1D HO 2nd excited state is ``levels=(2,)`` (E = 2.5 for omega = 1)."""

    name = "harmonic_oscillator"

    def __init__(self, p: HarmonicOscillatorParams):
        self.p = p
        self.dim = p.dim
        self.box = tuple((-p.half_width, p.half_width) for _ in range(p.dim))
        self.exact_energy = p.omega * (sum(p.levels) + p.dim / 2)
        self.default_anchor = self.smooth_anchor(p)
        # every level's classical turning point inside the box (else the density is cut by it)
        for i, n in enumerate(p.levels):
            turn = math.sqrt((2 * n + 1) / p.omega)
            check(turn < p.half_width, "system.levels",
                  f"level {n} (axis {i}) reaches |x| = {turn:.3g} bohr (classical turning point "
                  f"sqrt((2n+1)/omega)), beyond half_width = {p.half_width:g}: raise half_width above "
                  f"{turn + 3 / math.sqrt(p.omega):.3g} bohr or choose a lower level")

    @classmethod
    def smooth_anchor(cls, p: HarmonicOscillatorParams) -> tuple:
        """The default anchor r0 (bohr): on every axis the maximum of |phi_{n_i}| nearest the origin
        on the side x_i >= 0 (0 for even n_i, never a node), and in D > 1 never the origin itself:
        there the network's input |x| (``model.radius_input``) has a kink, on which the network
        learns a narrow dip that pins U(r0) = V(r0) while U - V is off by a constant elsewhere
        (3D HO, MPNN, 6 seeds: +11.6 +- 7.5 mHa in the ground state, +28 +- 35 in (1,0,0); with
        this anchor -3.0 +- 1.8 and +0.1 +- 3.2, tests/inverse/test_anchor.py). If every axis gives
        0, axis 0 moves to the next maximum of |phi_{n_0}| (y = 1, psi^2 = e^-1 of its peak, for n_0 = 0)."""
        maxima = [cls._maxima(n) for n in p.levels]
        y = [m[0] for m in maxima]
        if p.dim > 1 and not any(y):
            y[0] = maxima[0][1] if len(maxima[0]) > 1 else 1.0
        return tuple(float(v) / math.sqrt(p.omega) for v in y)

    @classmethod
    def _maxima(cls, n: int) -> list:
        """Local maxima of |phi_n(y)| on y >= 0, increasing (0.0 for even n), rounded to 1e-3."""
        y = torch.linspace(0.0, math.sqrt(2 * n + 1) + 1.0, 100001, dtype=torch.float64)
        a = cls.hermite_function(n, y).abs()
        inner = torch.nonzero((a[1:-1] > a[:-2]) & (a[1:-1] >= a[2:]))[:, 0] + 1
        out = [0.0] if n % 2 == 0 else []
        return out + [round(float(y[i]), 3) for i in inner]

    @staticmethod
    def hermite_function(n: int, y: torch.Tensor) -> torch.Tensor:
        """Normalised Hermite function phi_n(y) = H_n(y) exp(-y^2/2) / sqrt(2^n n! sqrt(pi)),
        by the stable recurrence phi_k = sqrt(2/k) y phi_{k-1} - sqrt((k-1)/k) phi_{k-2}
        in float64 (H_n and n! alone overflow from n ~ 170; float32's exp(-y^2/2) underflows
        inside the box of a high level although phi_n itself does not)."""
        y = y.to(torch.float64)
        prev = torch.zeros_like(y)
        cur = math.pi ** -0.25 * torch.exp(-0.5 * y * y)
        for k in range(1, n + 1):
            prev, cur = cur, math.sqrt(2.0 / k) * y * cur - math.sqrt((k - 1) / k) * prev
        return cur

    def psi(self, x):
        """|psi(x)| = prod_i omega^(1/4) |phi_{n_i}(sqrt(omega) x_i)|  (bohr^(-D/2))."""
        w = self.p.omega
        y = math.sqrt(w) * x
        out = torch.ones(x.shape[:-1], dtype=torch.float64, device=x.device)
        for i, n in enumerate(self.p.levels):
            out = out * (w ** 0.25) * self.hermite_function(n, y[..., i])
        return out.abs().to(x.dtype)

    def kinetic_local(self, x):
        w = self.p.omega
        return w * w * (x * x).sum(-1) - w * (2 * sum(self.p.levels) + self.dim)

    def potential(self, x):
        return 0.5 * self.p.omega ** 2 * (x * x).sum(-1)


@dataclass(frozen=True)
class HydrogenParams:
    Z: float = field(1.0, help="nuclear charge (e)")
    half_width: float = field(5.0, help="sampling box [-half_width, half_width]^3 (bohr)")
    anchor: tuple[float, float, float] = field((1.0, 0.0, 0.0), help="default gauge anchor r0 (bohr)")

    def __post_init__(self):
        check(self.Z > 0, "system.Z", "must be > 0")
        check(self.half_width > 0, "system.half_width", "must be > 0")


class Hydrogen1s(System):
    """Hydrogen-like 1s state in 3D Cartesian coordinates:
    psi = sqrt(Z^3/pi) exp(-Z r), V = -Z/r, E = -Z^2/2 (Hartree);
    Lap psi / psi = Z^2 - 2 Z / r  (1/bohr^2)."""

    name = "hydrogen"
    dim = 3

    def __init__(self, p: HydrogenParams):
        self.p = p
        self.box = tuple((-p.half_width, p.half_width) for _ in range(3))
        self.exact_energy = -0.5 * p.Z ** 2
        self.default_anchor = p.anchor

    def _r(self, x):
        return torch.linalg.vector_norm(x, dim=-1)

    def psi(self, x):
        return math.sqrt(self.p.Z ** 3 / math.pi) * torch.exp(-self.p.Z * self._r(x))

    def log_density(self, x):
        return -2.0 * self.p.Z * self._r(x)

    def kinetic_local(self, x):
        return self.p.Z ** 2 - 2.0 * self.p.Z / self._r(x)

    def potential(self, x):
        return -self.p.Z / self._r(x)

    def line(self, n):
        """The x axis at cell midpoints, shifted by a quarter cell where a midpoint would sit
        on the nucleus (odd n in the symmetric box), so that no point does."""
        lo, hi = self.box[0]
        s = lo + (np.arange(n) + 0.5) * (hi - lo) / n
        if np.any(np.abs(s) < 1e-9 * (hi - lo)):
            s = s + 0.25 * (hi - lo) / n
        pts = np.zeros((n, 3))
        pts[:, 0] = s
        return s, pts


#: Hydrogen-like real orbitals in 3D Cartesian coordinates, oriented along the x axis (the
#: evaluation line): name -> (n, l, psi / (Z^(3/2) e^(-Z r / n)) as a function of (Z x, Z r)).
#: psi_2p = 2p_x; psi_3d = 3d with m = 0 about the x axis (3 x^2 - r^2, the "d_x2" lobes on the axis).
HYDROGEN_STATES = {
    "1s": (1, 0, lambda zx, zr: torch.full_like(zr, 1.0 / math.sqrt(math.pi))),
    "2s": (2, 0, lambda zx, zr: (2.0 - zr) / math.sqrt(32.0 * math.pi)),
    "2p": (2, 1, lambda zx, zr: zx / math.sqrt(32.0 * math.pi)),
    "3d": (3, 2, lambda zx, zr: (3.0 * zx * zx - zr * zr) / (81.0 * math.sqrt(6.0 * math.pi))),
}


@dataclass(frozen=True)
class HydrogenLikeParams:
    state: str = field("2s", help=f"orbital: one of {sorted(HYDROGEN_STATES)} (2p = 2p_x; 3d = m = 0 about x)")
    Z: float = field(1.0, help="nuclear charge (e)")
    half_width: Optional[float] = field(None, help="sampling box [-half_width, half_width]^3 (bohr); default: "
                                        "the radius holding 99.5% of the density, rounded up to 0.5 bohr")
    anchor: Optional[tuple[float, float, float]] = field(
        None, help="gauge anchor r0 (bohr); default: (r_max, 0, 0) at the outer maximum of the radial "
                   "density r^2 |psi|^2 along the x axis (off the nucleus and every node)")

    def __post_init__(self):
        check(self.state in HYDROGEN_STATES, "system.state",
              f"unknown {self.state!r}; valid: {', '.join(sorted(HYDROGEN_STATES))}")
        check(self.Z > 0, "system.Z", "must be > 0")
        check(self.half_width is None or self.half_width > 0, "system.half_width", "must be > 0")


class HydrogenLike(Hydrogen1s):
    """A hydrogen-like eigenstate n l in 3D Cartesian coordinates (real orbitals, along x):
      psi_1s = Z^(3/2) / sqrt(pi) e^(-Z r)
      psi_2s = Z^(3/2) / sqrt(32 pi) (2 - Z r) e^(-Z r / 2)            (a node at r = 2/Z)
      psi_2p = Z^(5/2) / sqrt(32 pi) x e^(-Z r / 2)                    (the plane x = 0)
      psi_3d = Z^(7/2) / (81 sqrt(6 pi)) (3 x^2 - r^2) e^(-Z r / 3)     (the cone 3 x^2 = r^2)
    V = -Z/r, E = -Z^2 / (2 n^2) (Hartree). Since psi is an eigenstate,
      Lap psi / psi = 2 (V - E) = Z^2 / n^2 - 2 Z / r  (1/bohr^2)
    everywhere off the nodes and the nucleus (analytic: no 0/0 at a node)."""

    name = "hydrogen_like"

    def __init__(self, p: HydrogenLikeParams):
        self.p = p
        self.n, self.l, self._angular = HYDROGEN_STATES[p.state]
        self.exact_energy = -0.5 * p.Z ** 2 / self.n ** 2
        hw = self.default_half_width(p.state, p.Z) if p.half_width is None else p.half_width
        self.box = tuple((-hw, hw) for _ in range(3))
        self.default_anchor = (tuple(float(a) for a in p.anchor) if p.anchor is not None
                               else (self.radial_maximum(p.state, p.Z), 0.0, 0.0))

    @staticmethod
    def _radial_density(state: str, Z: float, r: np.ndarray) -> np.ndarray:
        """r^2 R_nl(r)^2 up to a constant (1/bohr)."""
        n, l, _ = HYDROGEN_STATES[state]
        zr = Z * r
        poly = 2.0 - zr if state == "2s" else np.ones_like(zr)
        return (zr ** (l + 1) * poly) ** 2 * np.exp(-2.0 * zr / n)

    @classmethod
    def default_half_width(cls, state: str, Z: float) -> float:
        """The radius (bohr) holding 99.5% of the density, rounded up to 0.5 bohr."""
        r = np.linspace(0.0, 80.0 / Z, 80001)
        cdf = np.cumsum(cls._radial_density(state, Z, r))
        return math.ceil(2.0 * float(r[np.searchsorted(cdf, 0.995 * cdf[-1])])) / 2.0

    @classmethod
    def radial_maximum(cls, state: str, Z: float) -> float:
        """The outermost maximum of r^2 R_nl^2 (bohr): 1/Z, (3 + sqrt 5)/Z, 4/Z, 9/Z for 1s-3d."""
        return {"1s": 1.0, "2s": 3.0 + math.sqrt(5.0), "2p": 4.0, "3d": 9.0}[state] / Z

    def psi(self, x):
        Z = self.p.Z
        r = self._r(x)
        amp = Z ** 1.5 * self._angular(Z * x[..., 0], Z * r) * torch.exp(-Z * r / self.n)
        return amp.abs()

    def log_density(self, x):
        return 2.0 * torch.log(self.psi(x))

    def kinetic_local(self, x):
        return self.p.Z ** 2 / self.n ** 2 - 2.0 * self.p.Z / self._r(x)


# ----------------------------------------------------------------------------- tabulated

class CubicSpline1D:
    """Natural cubic spline through (knots, values), evaluated in torch so that
    autograd gives its exact derivatives (C2-continuous). Outside the knots the
    end polynomials are extended."""

    def __init__(self, knots: np.ndarray, values: np.ndarray):
        from scipy.interpolate import CubicSpline
        cs = CubicSpline(knots, values, bc_type="natural")
        self.knots = torch.as_tensor(knots, dtype=torch.float64)
        self.coef = torch.as_tensor(cs.c, dtype=torch.float64)  # (4, n-1), highest power first

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        knots = self.knots.to(s.device, s.dtype)
        coef = self.coef.to(s.device, s.dtype)
        i = torch.searchsorted(knots, s.detach().contiguous(), right=True) - 1
        i = i.clamp(0, knots.numel() - 2)
        t = s - knots[i]
        c = coef[:, i]
        return ((c[0] * t + c[1]) * t + c[2]) * t + c[3]


@dataclass(frozen=True)
class TabulatedParams:
    file: str = field(help="an .npz file with arrays x (bohr, increasing) and density (1/bohr^D); "
                      "optional: kinetic_local (Lap sqrt(n)/sqrt(n)), potential (Hartree); "
                      "scalars energy, anchor, anchor_value; string geometry (checked against "
                      "system.geometry)")
    geometry: str = field("line", help='"line" (1D Cartesian) or "radial" (3D, spherically symmetric)')
    lo: Optional[float] = field(None, help="lower end of the sampling box (default: first grid point)")
    hi: Optional[float] = field(None, help="upper end of the sampling box (default: last grid point)")

    def __post_init__(self):
        check(self.geometry in ("line", "radial"), "system.geometry", 'must be "line" or "radial"')


_FLAGGED: set = set()   # table files whose untrusted tail was already reported in this process


class TabulatedDensity(System):
    """A density n(x) given on a grid (1D line or 3D radial), |psi| = sqrt(n).

    Smooth interpolation: u = ln n is a natural cubic spline, so |psi| = exp(u/2) and
      line:   Lap|psi|/|psi| = u''/2 + u'^2/4
      radial: Lap|psi|/|psi| = u''/2 + u'^2/4 + u'/r
    unless the table carries ``kinetic_local`` itself (from analytic rho, rho', Lap rho,
    the accurate route for quantum-chemistry densities), which is then splined.
    The spline is evaluated in torch: the gradient of the local energy (QPNN loss)
    is exact for the interpolant. A density with a node (a zero inside the grid, or a local
    minimum where ln n jumps, :meth:`find_node`) is refused naming the node's position unless
    the table carries ``kinetic_local``: near a node the spline of ln n gives ~1/(x - x0)^2."""

    name = "tabulated"

    def __init__(self, x, density, geometry="line", kinetic_local=None, potential=None,
                 energy=None, anchor=None, anchor_value=None, lo=None, hi=None):
        x = np.asarray(x, dtype=np.float64)
        n = np.asarray(density, dtype=np.float64)
        check(x.ndim == 1 and n.shape == x.shape and x.size >= 4, "system.density",
              f"needs 1D arrays x and density of equal length >= 4, got {x.shape} and {n.shape}")
        check(bool(np.all(np.isfinite(x))) and bool(np.all(np.diff(x) > 0)), "system.x",
              "grid must be finite and strictly increasing")
        bad = ~np.isfinite(n)
        check(not bad.any(), "system.density",
              f"{int(bad.sum())} NaN/inf value(s) (first at x = {x[bad][0] if bad.any() else 0:.4g}); "
              "clean the table before use")
        zero = np.flatnonzero(n == 0)
        inner = zero[(zero > 0) & (zero < x.size - 1)]
        check(inner.size == 0 or n[inner[0] - 1] <= 0, "system.density",
              f"vanishes at x = {x[inner[0]] if inner.size else 0:.4g} bohr inside the grid (a node): ln n is "
              "-inf there; cut the grid at the node, or shift the grid off it and give a kinetic_local column "
              "(Lap sqrt(n)/sqrt(n), e.g. from n' and Lap n through `qpnn-hpc density`)")
        check(bool(np.all(n > 0)), "system.density",
              f"must be positive everywhere; {int((n <= 0).sum())} value(s) <= 0 (first at x = "
              f"{x[n <= 0][0] if (n <= 0).any() else 0:.4g}); cut the grid where the density vanishes")
        if kinetic_local is None:
            node = self.find_node(x, n)
            check(node is None, "system.density",
                  f"has a node near x = {node or 0:.4g} bohr (ln n drops by more than {self.NODE_JUMP:g} per grid step "
                  "there and rises again): the spline of ln n gives a kinetic term of order 1/(x - x0)^2 "
                  "(~1e4 /bohr^2) next to it and a wrong energy; give a kinetic_local column "
                  "(Lap sqrt(n)/sqrt(n), e.g. from n' and Lap n through `qpnn-hpc density`) or cut the grid "
                  "at the node")
        self.geometry = "radial" if geometry == "radial" else "cartesian"
        if self.geometry == "radial":
            check(x[0] > 0, "system.x", "a radial grid must start at r > 0")
        lo = float(x[0]) if lo is None else float(lo)
        hi = float(x[-1]) if hi is None else float(hi)
        check(x[0] <= lo < hi <= x[-1], "system.lo/hi", f"box must lie within the grid [{x[0]}, {x[-1]}]")
        self.box = ((lo, hi),)
        self._u = CubicSpline1D(x, np.log(n))
        self._g = self._column(x, kinetic_local, "kinetic_local")
        self._v = self._column(x, potential, "potential")
        self.exact_energy = None if energy is None else float(energy)
        self.default_anchor = ((float(anchor),) if anchor is not None else
                               (self.densest_point(x, n, lo, hi, self.geometry),) if potential is not None else
                               (0.5 * (lo + hi),))
        self._anchor_value = None if anchor_value is None else float(anchor_value)

    #: A node: an interior local minimum of n where the second difference of ln n,
    #: ln n[i-1] - 2 ln n[i] + ln n[i+1], exceeds this. Near a node n ~ (x - x0)^2, so with x0 at
    #: t grid steps from the minimum (t <= 1/2) it is 2 ln((1 - t^2)/t^2) >= 2 ln 3 = 2.2 on any grid;
    #: a resolved smooth minimum (a barrier between two wells) gives (ln n)'' h^2, e.g. 0.04 for
    #: (ln n)'' = 4 /bohr^2 at h = 0.1 bohr.
    NODE_JUMP = 1.0

    @classmethod
    def find_node(cls, x: np.ndarray, n: np.ndarray) -> Optional[float]:
        """The first node of a tabulated density n > 0 (bohr), or None: an interior local minimum
        i with a second difference of ln n above :attr:`NODE_JUMP`, placed where the signed
        amplitude +-sqrt(n), taken linear through x[i-1] and x[i+1], vanishes."""
        u = np.log(n)
        i = np.arange(1, n.size - 1)
        minimum = (n[i] < n[i - 1]) & (n[i] <= n[i + 1])
        jump = u[i - 1] - 2.0 * u[i] + u[i + 1]
        hit = i[minimum & (jump > cls.NODE_JUMP)]
        if hit.size == 0:
            return None
        k = int(hit[0])
        a, b = math.sqrt(n[k - 1]), math.sqrt(n[k + 1])
        return float((a * x[k + 1] + b * x[k - 1]) / (a + b))

    @staticmethod
    def densest_point(x: np.ndarray, n: np.ndarray, lo: float, hi: float, geometry: str) -> float:
        """The default anchor of a table with a potential and no anchor of its own (bohr): the
        grid point in the box where the density (radially: r^2 n) is largest, so that the gauge
        is fixed where U is best determined, never at a node or in a tail. (A table without a
        potential keeps the box's midpoint: its anchor_value is V there.)"""
        w = n * x * x if geometry == "radial" else n
        inside = (x >= lo) & (x <= hi)
        return float(x[inside][np.argmax(w[inside])])

    @staticmethod
    def _column(x, values, name):
        """Spline of an optional per-grid-point column (None if absent)."""
        if values is None:
            return None
        v = np.asarray(values, dtype=np.float64)
        check(v.shape == x.shape and bool(np.all(np.isfinite(v))), f"system.{name}",
              "must be finite, one value per grid point")
        return CubicSpline1D(x, v)

    @classmethod
    def from_params(cls, p: TabulatedParams) -> "TabulatedDensity":
        try:
            with np.load(data_file(p.file)) as npz:
                data = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as e:
            raise ConfigError(f"system.file: cannot read {p.file!r} ({e}); give an .npz file") from None
        for key in ("x", "density"):
            check(key in data, "system.file", f"{p.file!r} has no array {key!r}")
        if "geometry" in data:  # a table that knows its geometry (the atom tables: radial)
            g = str(data["geometry"])
            check(g == p.geometry, "system.geometry", f"{p.file!r} is a {g!r} table; set geometry = \"{g}\"")
        if str(data.get("tail_status", "")) in ("untrusted", "unchecked") and p.file not in _FLAGGED:
            _FLAGGED.add(p.file)  # written by `qpnn-hpc density` (qpnn_hpc.atoms.importer): say it once
            print(f"warning: {p.file} has an {data['tail_status']} tail (not grafted onto the asymptote, or "
                  "its graft off it); "
                  "its potential far out is not physical", file=sys.stderr)
        opt = {k: (data[k] if k in data else None)
               for k in ("kinetic_local", "potential", "energy", "anchor", "anchor_value")}
        for k in ("energy", "anchor", "anchor_value"):
            if opt[k] is not None:
                opt[k] = float(opt[k])
        return cls(data["x"], data["density"], geometry=p.geometry, lo=p.lo, hi=p.hi, **opt)

    def psi(self, x):
        return torch.exp(0.5 * self._u(x[..., 0]))

    def log_density(self, x):
        logp = self._u(x[..., 0])
        if self.geometry == "radial":
            logp = logp + 2.0 * torch.log(x[..., 0].abs())
        return logp

    def kinetic_local(self, x):
        s = x[..., 0]
        if self._g is not None:
            return self._g(s)
        # derivatives of the spline u(s) by autograd, kept in the graph (QPNN needs d/dx)
        s_ = s if s.requires_grad else s.detach().requires_grad_(True)
        u = self._u(s_)
        du = autodiff.gradient(u, s_)
        d2u = autodiff.gradient(du, s_)
        g = 0.5 * d2u + 0.25 * du * du
        if self.geometry == "radial":
            g = g + du / s_
        return g

    def potential(self, x):
        if self._v is None:
            return super().potential(x)
        return self._v(x[..., 0])

    @property
    def has_potential(self) -> bool:
        return self._v is not None

    def anchor(self, point=None, value=None):
        """Without a tabulated potential, V(r0) is the table's ``anchor_value``, which holds
        at the table's own ``anchor`` only: another ``loss.anchor`` needs its own value."""
        if value is None and self._v is None:
            value = self._anchor_value
            if value is None:
                raise ConfigError("loss.anchor_value: the tabulated system has no potential; "
                                  "give anchor_value in the table or the spec")
            if point is not None and tuple(map(float, point)) != self.default_anchor:
                raise ConfigError(f"loss.anchor_value: the table's anchor_value is V at its anchor "
                                  f"{list(self.default_anchor)}, not at loss.anchor = {list(point)}; "
                                  "give anchor_value for that point, or drop loss.anchor")
        return super().anchor(point, value)


# ----------------------------------------------------------------------------- registry

_REGISTRY = {
    "harmonic_oscillator": (HarmonicOscillatorParams, HarmonicOscillator),
    "hydrogen": (HydrogenParams, Hydrogen1s),
    "hydrogen_like": (HydrogenLikeParams, HydrogenLike),
    "tabulated": (TabulatedParams, TabulatedDensity.from_params),
}


def system_names() -> list[str]:
    return sorted(_REGISTRY)


def make_system(name: str, params: Optional[dict] = None) -> System:
    """Build a system from its registry name and a table of parameters."""
    if name not in _REGISTRY:
        raise ConfigError(f"system.name: unknown system {name!r}; valid names are: "
                          f"{', '.join(system_names())}")
    pcls, ctor = _REGISTRY[name]
    return ctor(from_dict(pcls, params or {}, "system"))
