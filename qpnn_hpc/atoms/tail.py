"""Tail diagnostics and the graft: where a density's v_eff stops following its asymptote.

Hartree atomic units: distances in bohr, energies in Hartree, k in 1/bohr^2.

Far from a system of net charge z = Z - N + 1 seen by the outermost electron (z = 1 for a
neutral atom), sqrt(n) is the outermost orbital's radial function, a Whittaker function of
the Coulomb problem with that shell's angular momentum l (qpnn_hpc.atoms.shells.outer_l), so

    n(s) ~ exp(a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2 + ...),     kappa = sqrt(2 IP),
    beta = z/kappa - 1  (radial: 3D Laplacian),     beta = z/kappa  (line: 1D, l = 0),
    kappa a1 = l(l+1) - b(b - 1),   b = z/kappa   (radial, :func:`a1_of`; on a line a1 is fitted:
                                                   a softened -1/(s + 1) moves it),

with s the distance from the centre (r, or |x| on a line centred at x = 0). Its local
kinetic term k = Lap sqrt(n)/sqrt(n) (:func:`kinetic`) and the one-orbital potential
v_eff = mu + k/2 then follow, to O(1/s^3),

    k_A(s) = kappa^2 - 2 z/s + l(l+1)/s^2,     v_A(s) = mu + k_A(s)/2   (:func:`asymptote_k`)

(mu = -IP: v_A = -z/s + l(l+1)/(2 s^2), the Coulomb tail with the outer shell's centrifugal
term: Ne's 2p gives +1/s^2, +10 mHa at 10 bohr). The deviation delta(s) = v_eff - v_A = (k - k_A)/2
does not depend on the gauge. A Gaussian-basis tail decays too fast: ln n bends down like
-alpha s^2, k grows like s^2 and v_eff oscillates or rises instead of approaching v_A.

The diagnosis (:func:`diagnose_side`): the points with abs(delta) <= ``tol`` that form a
stretch at least ``min_length`` long; the first such stretch outwards is the one where
the tail follows the asymptote. If it reaches the table's end the tail is "physical";
otherwise it stops at r_out and the graft switches to the asymptotic series at r_match, with
a1 as above and a0, a2 .. a5 (a line: a0 .. a4) making ln n and its first four derivatives continuous there
(:func:`graft_log`): v_eff, its slope and its curvature are continuous. r_match is the switch
in [r_in - 1, r_out - min(1, (r_out - r_in)/2)] bohr that puts the table's outer half closest to
v_A (:func:`auto_match`). Without such a stretch within ``tol``, one within 2 ``tol`` is used;
without that either, the switches within 1 bohr of where v_eff first meets the asymptote are
tried; the summary says which. If v_eff never meets it, the user must give r_match.
Defaults ``tol`` = 0.03 Ha and ``min_length`` = 1 bohr. The shipped tables' presets
(jobs/atoms/make_densities.py RECIPES) and why: benchmarks/ne_tail.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from qpnn_hpc.atoms.density_verb import DEFAULT_MIN_LENGTH, DEFAULT_TOL
from qpnn_hpc.config import ConfigError

RELAX = (1, 2)   # tolerance factors tried in turn for a stretch of min_length (diagnose_side)
MATCH_INSET = 1.0   # bohr: how far inside the trusted stretch's end the last candidate switch sits (candidates)
AUTO_TIE = 1e-4     # Hartree: candidates whose outer-half rms is this close to the best count as tied (auto_match)



# ----------------------------------------------------------------------------- log form

def to_log(x, n, dn, lap, geometry: str):
    """u = ln n, u' = n'/n, u'' from Lap n: radial Lap n = n'' + 2 n'/r, line Lap n = n''."""
    x, n, dn, lap = (np.asarray(a, dtype=np.float64) for a in (x, n, dn, lap))
    du = dn / n
    d2n = lap - 2.0 * dn / x if geometry == "radial" else lap
    return np.log(n), du, d2n / n - du * du


def from_log(x, u, du, d2u, geometry: str):
    """(n, n', Lap n) from u = ln n and its first two derivatives (inverse of :func:`to_log`)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.exp(u)
    dn = n * du
    lap = n * (d2u + du * du)
    if geometry == "radial":
        lap = lap + 2.0 * dn / x
    return n, dn, lap


def kinetic(x, du, d2u, geometry: str):
    """k = Lap sqrt(n)/sqrt(n) = u''/2 + u'^2/4 (+ u'/r radially)  (1/bohr^2)."""
    k = 0.5 * d2u + 0.25 * du * du
    if geometry == "radial":
        k = k + du / np.asarray(x, dtype=np.float64)
    return k


def beta_of(kappa: float, z_net: float, geometry: str) -> float:
    """The power of the asymptotic form: z/kappa - 1 (radial) or z/kappa (line)."""
    return z_net / kappa - (1.0 if geometry == "radial" else 0.0)


def a1_of(kappa: float, z_net: float, geometry: str, l: int = 0) -> Optional[float]:
    """The 1/s coefficient of ln n from the Coulomb asymptotic series (module docstring):
    radially kappa a1 = l(l+1) - b(b - 1), b = z/kappa (the Whittaker function W_{b, l+1/2}(2 kappa r),
    squared; hydrogen 1s: b = 1, a1 = 0). None on a line: 1D model atoms have softened
    potentials, whose 1/s^2 term moves a1 (-1/(s + 1): a1 = 2), so the graft fits it."""
    if geometry != "radial":
        return None
    b = z_net / kappa
    return (l * (l + 1) - b * (b - 1.0)) / kappa


def asymptote_k(s, ip: float, z_net: float, geometry: str, l: int = 0):
    """k_A(s) = kappa^2 - 2 z/s + l(l+1)/s^2 (module docstring; l = 0 on a line), s > 0 the
    distance (bohr): exact for a pure Coulomb tail -z/s with the centrifugal term."""
    s = np.asarray(s, dtype=np.float64)
    kappa = math.sqrt(2.0 * ip)
    ll = l * (l + 1) if geometry == "radial" else 0
    return kappa * kappa - 2.0 * z_net / s + ll / (s * s)


def deviation(s, k, ip: float, z_net: float, geometry: str, l: int = 0):
    """delta(s) = v_eff - v_A = (k - k_A)/2 (Hartree): how far a tail is from its asymptote."""
    return 0.5 * (np.asarray(k, dtype=np.float64) - asymptote_k(s, ip, z_net, geometry, l))


def outer_half(s) -> np.ndarray:
    """The points of the outer half of a table, s >= s_max/2: where a grafted tail must be on
    the asymptote (the report's independent check; :func:`auto_match`'s criterion)."""
    s = np.abs(np.asarray(s, dtype=np.float64))
    return s >= 0.5 * s.max()


# ----------------------------------------------------------------------------- graft

SERIES = (0, 2, 3, 4, 5)   # the powers p of a_p/s^p fitted at the switch where a1 is known (radial)
SERIES_LINE = (0, 1, 2, 3, 4)   # ... and where it is not (a line: a1 fitted too)


def _dpow(p: int, s, d: int):
    """d-th derivative of s^p."""
    c = 1.0
    for i in range(d):
        c *= p - i
    return c * np.asarray(s, dtype=np.float64) ** (p - d)


def graft_log(s, u, du, d2u, kappa: float, beta: float, a1: Optional[float], r_match: float):
    """Replace u = ln n beyond r_match by the asymptotic series

        u_A = a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2 + a3/s^3 + a4/s^4 (+ a5/s^5),

    a1 from the outer shell (:func:`a1_of`) and a0, a2 .. a5 solving d^k u_A/ds^k = d^k u/ds^k,
    k = 0 .. 4, at s_m (on a line, a1 = None: a0 .. a4 solve them), the first grid point at or
    beyond r_match (the third and fourth derivatives from a cubic spline of the input's u''):
    n, n', Lap n, v_eff and v_eff's slope and curvature
    are continuous there, and far out v_eff -> v_A = mu - z/s + l(l+1)/(2 s^2). Why C4: a
    network fits v_eff's slope (the loss is grad E_loc), and a jump in it at the switch is a
    corner it rounds off over about half a bohr. The C2 switch of before (a0, a1, a2 free) left
    Ne's v_eff slope jumping by -0.12 Ha/bohr and its curvature by +5.5 Ha/bohr^2 at 1.3 bohr (every
    Ne trial +2 to +3 mHa off), and Be's slope by -15 mHa/bohr at 5 bohr (U - v_eff dipped to
    -7 mHa there; benchmarks/ne_tail.py). ``s`` > 0 is the distance from the centre,
    increasing; derivatives are d/ds. Returns (u, du, d2u, info)."""
    from scipy.interpolate import CubicSpline
    s = np.asarray(s, dtype=np.float64)
    beyond = np.nonzero(s >= r_match)[0]
    if beyond.size < 2 or beyond[0] < 3:
        raise ConfigError(f"r_match: {r_match:.4g} bohr must lie inside the grid [{s[0]:.4g}, {s[-1]:.4g}] "
                          "(distance from the centre), with grid points on both sides; choose a radius in it")
    j = int(beyond[0])
    sm = float(s[j])
    spline = CubicSpline(s, d2u)
    have = [u[j], du[j], d2u[j], float(spline(sm, 1)), float(spline(sm, 2))]

    series = SERIES if a1 is not None else SERIES_LINE

    def known(t, d):   # d-th derivative of the fixed part 2 beta ln s - 2 kappa s (+ a1/s)
        t = np.asarray(t, dtype=np.float64)
        log_part = (np.log(t) if d == 0 else (-1) ** (d - 1) * math.factorial(d - 1) / t ** d)
        lin = -2 * kappa * t if d == 0 else (-2 * kappa if d == 1 else 0.0)
        return 2 * beta * log_part + lin + (0.0 if a1 is None else a1 * _dpow(-1, t, d))

    A = np.array([[float(_dpow(-p, sm, d)) for p in series] for d in range(5)])
    coef = np.linalg.solve(A, np.array([have[d] - float(known(sm, d)) for d in range(5)]))
    t = s[j:]
    new = [np.array(a, dtype=np.float64) for a in (u, du, d2u)]
    for d in range(3):
        new[d][j:] = known(t, d) + sum(c * _dpow(-p, t, d) for p, c in zip(series, coef))
    a = dict(zip((f"a{p}" for p in series), (float(c) for c in coef)), **({} if a1 is None else {"a1": float(a1)}))
    info = dict(kappa=kappa, beta=beta, **dict(sorted(a.items())), r_match=sm,
                form=("n = exp(a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2 + a3/s^3 + a4/s^4 + a5/s^5) for "
                      "s >= r_match, kappa = sqrt(2 IP), kappa a1 = l(l+1) - b(b-1) with b = z/kappa; a0, a2 .. a5: "
                      "ln n and its first four derivatives continuous at r_match") if a1 is not None else
                     ("n = exp(a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2 + a3/s^3 + a4/s^4) for s >= r_match, "
                      "kappa = sqrt(2 IP); a0 .. a4: ln n and its first four derivatives continuous at r_match"))
    return new[0], new[1], new[2], info


# ----------------------------------------------------------------------------- diagnosis

def stretches(s, ok) -> list[tuple[int, int]]:
    """Index ranges [i, j] (inclusive) of consecutive True in ``ok``."""
    out, start = [], None
    for i, good in enumerate(ok):
        if good and start is None:
            start = i
        if not good and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(ok) - 1))
    return out


@dataclass
class Side:
    """The diagnosis of one tail (radial: the only one; line: x > 0 or x < 0)."""
    name: str                      # "r", "x > 0" or "x < 0"
    s: np.ndarray                  # distance from the centre, increasing (bohr)
    delta: np.ndarray              # v_eff - v_A (Hartree)
    follows: Optional[tuple[float, float]]   # (r_in, r_out) of the stretch used, or None
    physical: bool                 # follows the asymptote to the table's end
    note: str                      # what was found, one clause
    fallback: bool = False         # no stretch of min_length: ``follows`` is the first touch


def diagnose_side(name, s, k, ip, z_net, geometry, tol=DEFAULT_TOL, min_length=DEFAULT_MIN_LENGTH,
                  l: int = 0) -> Side:
    """Find where the tail follows its asymptote (module docstring; l the outer shell's angular
    momentum): within ``tol``, else within 2 ``tol`` (a true density's 1/s^3 terms can exceed
    ``tol`` just where a basis tail goes wrong: the 1D model atom's softened -1/(s + 1) inside
    5.3 bohr), else the first point where it meets the asymptote within ``tol``."""
    delta = deviation(s, k, ip, z_net, geometry, l)
    for factor in RELAX:
        runs = [(s[i], s[j]) for i, j in stretches(s, np.abs(delta) <= factor * tol)]
        long = [(a, b) for a, b in runs if b - a >= min_length]
        if long:
            a, b = long[0]
            physical = b >= s[-1] and factor == 1
            note = (f"follows the asymptote within {factor * tol:g} Ha" +
                    (f" ({factor:g} x the tolerance: none of {min_length:g} bohr within {tol:g})" if factor > 1 else "")
                    + f" on [{a:.2f}, {b:.2f}] bohr" + (" (to the end)" if b >= s[-1] else f", stops at {b:.2f}"))
            return Side(name, s, delta, (a, b), physical, note)
    runs = [(s[i], s[j]) for i, j in stretches(s, np.abs(delta) <= tol)]
    if runs:
        a, b = runs[0]
        note = (f"never follows the asymptote within {RELAX[-1] * tol:g} Ha for {min_length:g} bohr; first meets "
                f"it (within {tol:g}) at {a:.2f} bohr")
        return Side(name, s, delta, (a, b), False, note, fallback=True)
    return Side(name, s, delta, None, False, f"never comes within {tol:g} Ha of the asymptote")


def candidates(side: Side) -> np.ndarray:
    """Switch radii :func:`auto_match` tries: the grid points, at most every 0.02 bohr, from 1 bohr
    before the stretch that follows the asymptote to MATCH_INSET = min(1, half its length) bohr
    inside its end; without such a stretch (``fallback``) within 1 bohr of where v_eff first
    meets the asymptote."""
    if side.follows is None:
        raise ConfigError(f"r_match: the tail ({side.name}) {side.note}; check the IP and charge, or give "
                          "--r-match (and --tail-tol) yourself, looking at the diagnostic plot")
    a, b = side.follows
    lo, hi = (a - 1.0, a + MATCH_INSET) if side.fallback else (a - 1.0, b - min(MATCH_INSET, 0.5 * (b - a)))
    s = side.s
    ok = np.nonzero((s >= max(lo, s[3])) & (s <= min(hi, s[-3])))[0]
    if ok.size == 0:
        raise ConfigError(f"r_match: no grid point to switch at on [{lo:.2f}, {hi:.2f}] bohr ({side.name}); "
                          "give --r-match yourself, looking at the diagnostic plot")
    step = max(1, int(round(0.02 / max(float(np.median(np.diff(s))), 1e-12))))
    return s[ok[::step]]


def auto_match(side: Side, u, du, d2u, kappa: float, beta: float, a1: float, ip: float, z_net: float,
               geometry: str, l: int = 0) -> tuple[float, float]:
    """(r_match, rms): the switch radius among :func:`candidates` whose graft puts the outer half
    of the table (s >= s_max/2, the half the report's check reads) closest to the asymptote
    v_A, by the rms of v_eff - v_A there (Hartree); of candidates within AUTO_TIE of the best,
    the outermost (an exact tail, where every switch gives the same table, keeps the input
    longest). The criterion prefers a switch where the input's first four derivatives are
    still those of the Coulomb tail: a switch where the input has already gone wrong carries
    the error out to the table's end (Be's raw columns switched at 5 bohr: 23 mHa rms, at 3: 2.1;
    benchmarks/ne_tail.py --scan)."""
    s = side.s
    outer = outer_half(s)
    best = []
    for c in candidates(side):
        _, gdu, gd2u, _ = graft_log(s, u, du, d2u, kappa, beta, a1, float(c))
        dev = deviation(s[outer], kinetic(s, gdu, gd2u, geometry)[outer], ip, z_net, geometry, l)
        best.append((float(np.sqrt(np.mean(dev * dev))), float(c)))
    low = min(r for r, _ in best)
    return max((c, r) for r, c in best if r <= low + AUTO_TIE)


def sides(x, geometry: str) -> list[tuple[str, np.ndarray]]:
    """(name, index array ordered outwards) of each tail: radial r; line x > 0 and x < 0
    (a side only if it reaches at least 1 bohr from the centre x = 0)."""
    x = np.asarray(x)
    if geometry == "radial":
        return [("r", np.arange(len(x)))]
    out = []
    right = np.nonzero(x > 0)[0]
    left = np.nonzero(x < 0)[0][::-1]
    if right.size and x[right[-1]] >= 1.0:
        out.append(("x > 0", right))
    if left.size and -x[left[-1]] >= 1.0:
        out.append(("x < 0", left))
    return out


def plot(path, x, v_raw, v_new, v_asym, window, tol, title: str):
    """The diagnostic figure: v_eff before and after, the asymptote, the matching window
    (top), and v_eff - v_A with the tolerance band (bottom). Writes ``path`` (PNG)."""
    from pathlib import Path
    from qpnn_hpc.reports import pyplot, save_figure
    plt = pyplot()
    fig, (ax, dax) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
    m = np.isfinite(v_asym)
    ax.plot(x, v_raw, color="C3", lw=1.0, label="v_eff, input")
    if v_new is not None:
        ax.plot(x, v_new, color="C0", lw=1.2, label="v_eff, grafted")
    ax.plot(x[m], v_asym[m], "k--", lw=1.0, label="asymptote v_A")
    dax.plot(x[m], (v_raw - v_asym)[m], color="C3", lw=1.0, label="input")
    if v_new is not None:
        dax.plot(x[m], (v_new - v_asym)[m], color="C0", lw=1.2, label="grafted")
    for lo, hi in window:
        for a in (ax, dax):
            a.axvspan(lo, hi, color="0.85", zorder=0)
    dax.axhspan(-tol, tol, color="g", alpha=0.15, label=f"+-{tol:g} Ha")
    shown = np.abs(x) >= 0.3                     # the core's -Z/r would flatten the rest
    ref = v_raw if v_new is None else v_new
    lo_v, hi_v = np.nanpercentile(ref[shown], [1, 99]) if shown.any() else (-2.0, 1.0)
    pad = 0.1 * (hi_v - lo_v) + 0.05
    ax.set_ylim(lo_v - pad, hi_v + pad)
    dax.set_ylim(-10 * tol, 10 * tol)
    ax.set_ylabel("v (Hartree)")
    dax.set_ylabel("v_eff - v_A (Hartree)")
    dax.set_xlabel("r (bohr)" if x.min() > 0 else "x (bohr)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    dax.legend(fontsize=8)
    path = Path(path)
    return save_figure(fig, path.parent, path.name)
