r"""Exact Kohn-Sham quantities of a two-electron singlet from its exact density (seed 002's systems).

Hartree atomic units: x in bohr, energies and potentials in hartree, densities in 1/bohr.

For two electrons of opposite spin in one spatial orbital, the Kohn-Sham orbital is fixed by
the density alone, :math:`\phi = \sqrt{n_2/2}` (nodeless, :math:`\int \phi^2 dx = 1`), and
the KS equation :math:`-\frac12\phi'' + v_s\phi = \varepsilon\phi` inverts pointwise:

.. math::  v_s(x) = \varepsilon + \frac{\phi''(x)}{2\,\phi(x)}, \qquad
           \varepsilon = E_2 - E_1 = -I \quad(\text{the HOMO is minus the ionisation energy}),

with :math:`\phi''` the same finite-difference stencil as the solver (so that, on the grid,
:math:`\phi` is exactly an eigenvector of :math:`\hat K + v_s`) and the gauge of V
(:math:`v_s \to 0` far away). Then, with the interaction :math:`w(x - x')` of the dataset
(:math:`1/(|x - x'| + 1)`) and rectangle-rule integrals (:math:`\int f dx = \Delta x\sum_i f_i`):

.. math::  v_H(x) = \int n_2(x') w(x - x') dx', \qquad v_{xc} = v_s - V - v_H, \\
           T_s = 2\langle\phi|\hat K|\phi\rangle, \quad T_c = T_2 - T_s \;(\ge 0), \quad
           E_H = \tfrac12 \iint n_2 n_2' w, \\
           E_{xc} = E_2 - T_s - \int n_2 V dx - E_H, \quad E_x = -E_H/2, \quad E_c = E_{xc} - E_x,

(two electrons in one orbital: exchange cancels half the Hartree energy, :math:`v_x = -v_H/2`).

Where :math:`v_s` can be trusted (:func:`trust_window`): the inversion divides by
:math:`\phi`, so where the density is tiny the eigensolver's error in it (about 1e-10/bohr)
is magnified, and the hard walls bend the tail (:math:`\phi = 0` just outside the grid). The
window is the central run of grid points where :math:`n_2 \ge` ``density_floor`` times its
maximum and at least ``wall_margin`` bohr from each wall; :func:`kohn_sham` puts NaN in
:math:`v_s` and :math:`v_{xc}` outside it (:math:`v_H` is an integral, good everywhere).
The energies (:math:`T_s`, :math:`E_{xc}`, ...) are integrals over the whole box, weighted
by the density, and need no window.

Measured (seed 002's grid, 14 bohr, 12 points per bohr): the inversion noise (LOBPCG against
ARPACK) is below 1e-10 Ha wherever n2 >= 1e-6 max(n2), so the window's floor of 1e-4 is
set by the walls, not the noise. For a strongly bound atom (Z = 2, alpha = 0.65) the 14 bohr
v_xc agrees with a 24 bohr box's to 1e-6 Ha inside the window (5e-5 Ha at the wall). For weakly
bound systems the box squeezes the whole density, not only its tail: v_xc moves by up to 23 mHa
(Z = 1, alpha = 1) and 60-150 mHa where the second electron is unbound (``bound`` = 0) between
14 and 24 bohr (24 -> 30 bohr: 2.3 mHa for Z = 1). The window does not cover that: use the
converged-grid option (24 bohr) for potentials of weakly bound systems.
"""
from __future__ import annotations

import numpy as np

from qpnn_hpc.config import check
from qpnn_hpc.exact1d import solver as solver1d

__all__ = ["DENSITY_FLOOR", "WALL_MARGIN", "PROFILE_KEYS", "SCALAR_KEYS", "DESCRIPTIONS",
           "trust_window", "kohn_sham"]

#: Trust window: n2 >= DENSITY_FLOOR * max(n2) (module docstring: what was measured).
DENSITY_FLOOR = 1e-4
#: Trust window: at least this far from each wall (bohr).
WALL_MARGIN = 1.0

PROFILE_KEYS = ("v_s", "v_H", "v_xc")
SCALAR_KEYS = ("eps_s", "T_s", "T_c", "E_H", "E_x", "E_c", "E_xc", "ks_x_min", "ks_x_max")

DESCRIPTIONS = {
    "v_s": "exact Kohn-Sham potential eps_s + phi''/(2 phi), phi = sqrt(n2/2) (Ha); NaN outside "
           "[ks_x_min, ks_x_max]",
    "v_H": "Hartree potential integral n2(x') / (|x - x'| + 1) dx' (Ha)",
    "v_xc": "exchange-correlation potential v_s - V - v_H (Ha; v_x = -v_H/2 exactly for two electrons in "
            "one orbital); NaN outside [ks_x_min, ks_x_max]",
    "eps_s": "Kohn-Sham orbital energy E2 - E1 = -(ionisation energy of the two-electron system) (Ha)",
    "T_s": "non-interacting kinetic energy 2 <phi|-(1/2) d2/dx2|phi> (Ha)",
    "T_c": "kinetic correlation energy T2 - T_s (Ha), >= 0",
    "E_H": "Hartree energy (1/2) double integral n2 n2' / (|x - x'| + 1) (Ha)",
    "E_x": "exchange energy -E_H/2 (Ha; exact for two electrons in one orbital)",
    "E_c": "correlation energy E_xc - E_x (Ha)",
    "E_xc": "exchange-correlation energy E2 - T_s - E_V2 - E_H (Ha)",
    "ks_x_min": "left end of the window where v_s and v_xc are trusted (bohr): n2 >= "
                f"{DENSITY_FLOOR:g} max(n2) and >= {WALL_MARGIN:g} bohr from the wall",
    "ks_x_max": "right end of that window (bohr)",
}


def trust_window(x, n2, density_floor: float = DENSITY_FLOOR, wall_margin: float = WALL_MARGIN) -> np.ndarray:
    """Boolean mask of the grid points where the inversion is trusted: the contiguous run,
    around the density maximum, of points with n2 >= density_floor * max(n2) that lie at
    least ``wall_margin`` bohr inside both walls (x in bohr, n2 in 1/bohr)."""
    x = np.asarray(x, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    check(n2.shape == x.shape, "n2", f"expected shape {x.shape} (one value per grid point), got {n2.shape}")
    check(0 < density_floor < 1, "density_floor", f"must be in (0, 1), got {density_floor!r}")
    ok = (n2 >= density_floor * n2.max()) & (x >= x[0] + wall_margin) & (x <= x[-1] - wall_margin)
    peak = int(np.argmax(np.where(ok, n2, -np.inf)))
    mask = np.zeros_like(ok)
    if not ok[peak]:
        return mask
    lo = peak
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    hi = peak
    while hi < len(ok) - 1 and ok[hi + 1]:
        hi += 1
    mask[lo:hi + 1] = True
    return mask


def kohn_sham(x, V, n2, E1: float, E2: float, T2: float, stencil: int = 13, interaction=None,
              density_floor: float = DENSITY_FLOOR, wall_margin: float = WALL_MARGIN) -> dict:
    r"""The exact KS quantities of a two-electron singlet (module docstring; hartree, bohr).

    ``x``: the solver's grid, ``V``: external potential, ``n2``: exact two-electron density
    (integral 2), ``E1``, ``E2``: one- and two-electron ground-state energies in V, ``T2``:
    the interacting kinetic energy, ``stencil``: the solver's, ``interaction``: N x N
    w(x_i, x_j) (default the softened 1/(|x - x'| + 1); zeros for non-interacting electrons).

    Returns arrays ``v_s``, ``v_H``, ``v_xc`` (NaN outside the trust window for v_s, v_xc),
    floats ``eps_s``, ``T_s``, ``T_c``, ``E_H``, ``E_x``, ``E_c``, ``E_xc``, ``ks_x_min``,
    ``ks_x_max`` (the window, bohr; NaN if empty) and the boolean ``window``.
    """
    x = np.asarray(x, dtype=float)
    dx = solver1d.grid_spacing(x)
    V = np.asarray(V, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    check(V.shape == x.shape and n2.shape == x.shape, "n2",
          f"V and n2 need one value per grid point ({x.shape}), got {V.shape} and {n2.shape}")
    w = solver1d.softened_interaction(x) if interaction is None else np.asarray(interaction, dtype=float)
    K = solver1d.kinetic_operator(x, stencil)
    phi = np.sqrt(np.clip(n2, 0.0, None) / 2.0)
    Kphi = K @ phi
    eps = E2 - E1
    window = trust_window(x, n2, density_floor, wall_margin)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_s = np.where(window, eps - Kphi / phi, np.nan)
    v_H = dx * (w @ n2)
    v_xc = v_s - V - v_H
    T_s = 2.0 * dx * float(phi @ Kphi)
    E_H = 0.5 * dx * float(n2 @ v_H)
    E_xc = E2 - T_s - dx * float(n2 @ V) - E_H
    E_x = -0.5 * E_H
    xs = x[window]
    return {"v_s": v_s, "v_H": v_H, "v_xc": v_xc, "eps_s": eps, "T_s": T_s, "T_c": T2 - T_s, "E_H": E_H,
            "E_x": E_x, "E_c": E_xc - E_x, "E_xc": E_xc,
            "ks_x_min": float(xs[0]) if xs.size else np.nan, "ks_x_max": float(xs[-1]) if xs.size else np.nan,
            "window": window}
