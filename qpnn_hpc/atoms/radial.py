"""The forward radial problem: the s state of a spherical potential with a given number of nodes.

Hartree atomic units: r in bohr, v in Hartree, rho in electrons/bohr^3.

For a spherically symmetric potential v(r) the s-wave orbital phi(r) = u(r)/r obeys

    -1/2 u''(r) + v(r) u(r) = eps u(r),     u(0) = u(R) = 0,

solved by second-order finite differences on the uniform grid r_i = i h (i = 1 .. M,
R = (M + 1) h): a symmetric tridiagonal matrix whose lowest eigenpair is taken with
LAPACK's bisection (scipy.linalg.eigh_tridiagonal): the eigenpair of index n is the s state
with n radial nodes (Sturm: the k-th eigenvector of a symmetric tridiagonal matrix with
negative off-diagonal has k sign changes). The error in eps and u is O(h^2).
The one-orbital density of N electrons is rho = N phi^2 with 4 pi int phi^2 r^2 dr = 1.

The round trip (issue 5, beyond seed 000): the learned U(r) on the training domain
[lo, hi], the exact inversion v_eff outside it (where the network never saw a point;
continued below the table's first point, see :func:`reference`), solved for rho_U and
compared with the input density rho:

    L2 = sqrt( int (rho_U - rho)^2 4 pi r^2 dr / int rho^2 4 pi r^2 dr )     (relative)

With U = v_eff everywhere the round trip returns the input density (tested). The state
compared is the one with the input's number of nodes (:func:`count_nodes`; a table may
also say ``nodes``): an excited-state density (hydrogen 2s) is compared with the 2s state
of U, not with its ground state (issue 12).
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline
from scipy.linalg import eigh_tridiagonal

from qpnn_hpc.atoms.densities import kinetic_from_log, log_derivatives

DEFAULT_H = 1e-3      # bohr: grid step
WALL_FACTOR = 2.0     # the round trip's wall u(R) = 0 at R = 2 r_max: its effect on rho(r <= r_max) is
                      # ~exp(-2 kappa r_max), below 1e-5 for Li's kappa = 0.63 and r_max = 12 bohr


NODE_DEPTH = 1e-3     # a node: an interior minimum of the density below 1e-3 of the smaller of the two
                      # maxima beside it. Hydrogen 2s on a 0.01-bohr grid: 5e-5; 1 bohr apart: 2e-2 of a
                      # 0.25-bohr grid's value; the deepest shell minimum of an atom's r^2 rho (Ne) is
                      # ~0.2 and rho itself has none; a 1D molecule's bond minimum ~0.1-0.5


def count_nodes(density) -> int:
    """Nodes of a sampled density (1D array, >= 0, on an ordered grid): interior local minima
    deeper than NODE_DEPTH times the smaller of the largest values on either side. A density
    has no sign, so a node shows as such a dip (its grid values near 0, never below)."""
    n = np.asarray(density, dtype=np.float64)
    if n.size < 3:
        return 0
    left = np.maximum.accumulate(n)
    right = np.maximum.accumulate(n[::-1])[::-1]
    nodes, i = 0, 1
    while i < n.size - 1:
        j = i
        while j + 1 < n.size - 1 and n[j + 1] == n[i]:   # a flat stretch counts once
            j += 1
        if n[i] < n[i - 1] and n[j] < n[j + 1] and n[i] < NODE_DEPTH * min(left[i - 1], right[j + 1]):
            nodes += 1
        i = j + 1
    return nodes


def bound_state(v, r_max: float, nodes: int = 0, n_electrons: float = 1.0, h: float = DEFAULT_H):
    """The s eigenpair with ``nodes`` radial nodes of -1/2 Lap + v(r), phi(r_max) = 0.

    ``v``: a callable r (array, bohr) -> v (Hartree). Returns (eps, r, rho): the
    eigenvalue (Hartree) and rho = n_electrons phi^2 (1/bohr^3) on r_i = i h."""
    m = int(round(r_max / h)) - 1
    if m < 10:
        raise ValueError(f"r_max = {r_max} bohr is too small for the step h = {h} bohr")
    r = h * np.arange(1, m + 1)
    diag = 1.0 / (h * h) + np.asarray(v(r), dtype=np.float64)
    off = np.full(m - 1, -0.5 / (h * h))
    eps, vec = eigh_tridiagonal(diag, off, select="i", select_range=(nodes, nodes))
    u = vec[:, 0]
    norm = 4.0 * np.pi * h * np.sum(u * u)   # 4 pi int phi^2 r^2 dr = 4 pi int u^2 dr
    rho = n_electrons * u * u / (norm * r * r)
    return float(eps[0]), r, rho


def ground_state(v, r_max: float, n_electrons: float = 1.0, h: float = DEFAULT_H):
    """Lowest eigenpair of -1/2 Lap + v(r) with phi(r_max) = 0 (:func:`bound_state`, no node)."""
    return bound_state(v, r_max, 0, n_electrons, h)


def table_nodes(table: dict) -> int:
    """The number of radial nodes of a table's density: its ``nodes`` entry if it has one,
    else :func:`count_nodes` of r^2 rho on its grid."""
    if table.get("nodes") is not None:
        return int(table["nodes"])
    r = np.asarray(table["x"], dtype=np.float64)
    return count_nodes(r * r * np.asarray(table["density"], dtype=np.float64))


def density_l2(r, rho, rho_ref) -> float:
    """Relative L2 difference of two densities on one uniform radial grid (3D measure)."""
    w = r * r
    return float(np.sqrt(np.sum(w * (rho - rho_ref) ** 2) / np.sum(w * rho_ref ** 2)))


def reference(table: dict):
    """The input density and its exact inversion as functions on [0, r_max] (r_max: the
    table's last point): callables rho(r) (1/bohr^3) and v(r) = mu + k(r)/2 (Hartree).

    On the table's grid: the cubic Hermite interpolant of ln rho (values and the analytic
    slopes rho'/rho) and a cubic spline of k. Below its first point a, where
    no table value exists, ln rho is continued by its second-order Taylor polynomial at a,
    w(r) = w0 + w1 (r - a) + w2 (r - a)^2 / 2, and v by the exact inversion of that same
    continuation, k = w''/2 + w'^2/4 + w'/r: the continued sqrt(rho) is still an exact
    eigenfunction of the continued v, so the round trip with v itself returns rho. Beyond
    the last point z, k is continued as c - b/r (the Coulomb tail), matched in value and
    slope at z; rho is compared on [0, z] only."""
    r_tab = np.asarray(table["x"], dtype=np.float64)
    w_tab, dw_tab, d2w_tab = log_derivatives(r_tab, table["density"], table["drho"], table["lap_rho"])
    ln_rho = CubicHermiteSpline(r_tab, w_tab, dw_tab)
    k_tab = CubicSpline(r_tab, table["kinetic_local"])
    a = float(r_tab[0])
    w0, w1, w2 = float(w_tab[0]), float(dw_tab[0]), float(d2w_tab[0])
    mu = float(table["mu"])

    def rho(r):
        r = np.asarray(r, dtype=np.float64)
        d = r - a
        return np.exp(np.where(r < a, w0 + w1 * d + 0.5 * w2 * d * d, ln_rho(np.maximum(r, a))))

    z = float(r_tab[-1])
    b = z * z * float(k_tab(z, 1))          # k = c - b/r beyond z, matched in value and slope
    c = float(k_tab(z)) + b / z

    def v(r):
        r = np.asarray(r, dtype=np.float64)
        k_core = kinetic_from_log(r, w1 + w2 * (r - a), w2)
        k = np.where(r < a, k_core, np.where(r > z, c - b / r, k_tab(np.clip(r, a, z))))
        return mu + 0.5 * k
    return rho, v


def spliced_potential(r_in, u_in, v_outer):
    """v(r): the spline of (r_in, u_in) on [r_in[0], r_in[-1]], ``v_outer`` elsewhere."""
    inner = CubicSpline(r_in, u_in)
    lo, hi = float(r_in[0]), float(r_in[-1])

    def v(r):
        r = np.asarray(r, dtype=np.float64)
        out = np.asarray(v_outer(r), dtype=np.float64).copy()
        m = (r >= lo) & (r <= hi)
        out[m] = inner(r[m])
        return out
    return v


def round_trip(table: dict, r_in, u_in, h: float = DEFAULT_H) -> dict:
    """Solve with U = u_in on r_in (the learned potential, in the table's gauge) and the
    exact inversion of the table outside (see :func:`reference`) for the state with the
    input's number of nodes (:func:`table_nodes`); compare with the input density on [0, r_max].

    Returns eigenvalue (Hartree), its error against the table's eigenvalue mu (Hartree),
    the relative L2 density difference and the nodes."""
    rho_ref, v_ref = reference(table)
    r_max = float(table["x"][-1])
    nodes = table_nodes(table)
    v = spliced_potential(np.asarray(r_in), np.asarray(u_in), v_ref)
    eps, r, rho = bound_state(v, WALL_FACTOR * r_max, nodes, 1.0, h)
    m = r <= r_max
    ref = rho_ref(r[m])
    n_el = 4.0 * np.pi * h * np.sum(ref * r[m] ** 2)
    return {"eigenvalue": eps, "eigenvalue_error": eps - float(table["mu"]),
            "density_l2": density_l2(r[m], n_el * rho[m], ref), "nodes": nodes}
