"""Tail diagnostics and the graft: where a density's v_eff stops following its asymptote.

Hartree atomic units: distances in bohr, energies in Hartree, k in 1/bohr^2.

Far from a system of net charge z = Z - N + 1 seen by the outermost electron (z = 1 for a
neutral atom), the density decays as

    n(s) ~ exp(a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2 + ...),     kappa = sqrt(2 IP),
    beta = z/kappa - 1  (radial: 3D Laplacian),     beta = z/kappa  (line: 1D),

with s the distance from the centre (r, or |x| on a line centred at x = 0). Its local
kinetic term k = Lap sqrt(n)/sqrt(n) (:func:`kinetic`) and the one-orbital potential
v_eff = mu + k/2 then follow, with a1 = a2 = 0,

    k_A(s) = kappa^2 - 2 z/s + c2/s^2,   c2 = beta z/kappa (radial),  beta (beta - 1) (line),
    v_A(s) = mu + k_A(s)/2               (mu = -IP: v_A -> -z/s, the -1/r of a neutral atom).

The deviation delta(s) = v_eff - v_A = (k - k_A)/2 does not depend on the gauge (a1 /= 0
adds kappa a1/(2 s^2): Ne's shipped graft +12 mHa at 10 bohr, Li -9, Be +3). A
Gaussian-basis tail decays too fast: ln n bends down like -alpha s^2, k grows like s^2
and v_eff oscillates or rises instead of approaching -z/s.

The diagnosis (:func:`diagnose_side`): the points with abs(delta) <= ``tol`` that form a
stretch at least ``min_length`` long; the first such stretch outwards is the one where
the tail follows the asymptote. If it reaches the table's end the tail is "physical";
otherwise it stops at r_out and the graft switches to the asymptotic form at r_match =
r_out - min(1, (r_out - r_in)/2) bohr (:func:`auto_match`), with a0, a1, a2 making ln n, its
slope and curvature continuous there (:func:`graft_log`). Without such a stretch within
``tol``, one within 2 ``tol`` is used (the 1D model atom's own a1/s term exceeds 0.03 Ha
inside 5.3 bohr: a basis tail going wrong at 6 leaves no 1 bohr within 0.03); without that
either, r_match is 1 bohr past where v_eff first meets the asymptote; the summary says
which. If v_eff never meets it, the user must give r_match. Defaults ``tol`` = 0.03 Ha and
``min_length`` = 1 bohr. On the raw (Gaussian-basis) columns of the shipped tables: Li
follows on [4.1, 12] bohr (grafted at 7 by its preset); Be follows on [4.3, 7.9] (then dips
0.03 Ha below and rises 0.2 Ha above the asymptote by 12 bohr; grafted at 5); Ne oscillates
by 0.3 Ha from 1.5 bohr on and first meets the asymptote at 1.0 bohr (auto: r_match 2; its
preset, by eye: 1.3, where v_eff past it is monotone and within 11 mHa at 3 bohr of the
grafts at 1.2 and 1.4; benchmarks/ne_tail.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from qpnn_hpc.atoms.density_verb import DEFAULT_MIN_LENGTH, DEFAULT_TOL
from qpnn_hpc.config import ConfigError

RELAX = (1, 2)   # tolerance factors tried in turn for a stretch of min_length (diagnose_side)
MATCH_INSET = 1.0   # bohr: how far inside the trusted stretch's end the automatic r_match sits (auto_match)



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


def asymptote_k(s, ip: float, z_net: float, geometry: str):
    """k_A(s) = kappa^2 - 2 z/s + c2/s^2 (module docstring), s > 0 the distance (bohr)."""
    s = np.asarray(s, dtype=np.float64)
    kappa = math.sqrt(2.0 * ip)
    beta = beta_of(kappa, z_net, geometry)
    c2 = beta * z_net / kappa if geometry == "radial" else beta * (beta - 1.0)
    return kappa * kappa - 2.0 * z_net / s + c2 / (s * s)


# ----------------------------------------------------------------------------- graft

def graft_log(s, u, du, d2u, kappa: float, beta: float, r_match: float):
    """Replace u = ln n beyond r_match by u_A = a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2.

    a0, a1, a2 solve u_A = u, u_A' = u', u_A'' = u'' at s_m, the first grid point at or
    beyond r_match: n, n', Lap n and v_eff are continuous there; v_eff's slope and curvature
    jump (Ne's raw columns: by up to 0.5 Ha/bohr and 5 Ha/bohr^2 for s_m in [1.2, 1.4]; at the
    shipped 1.3, -0.12 and +5.5; benchmarks/ne_tail.py). a1/s and a2/s^2 carry the decay of
    v_eff onto the asymptote (their kinetic terms fall off as 1/s^2, like the centrifugal
    1/r^2 of a p shell). A blend of ln n into a form with a0, a1 fitted on a window (the
    method before 2026-11-30) left a 0.1-0.3 Ha bump in v_eff at the blend's end wherever the
    raw tail oscillates (Ne: benchmarks/ne_tail.py); the C2 switch leaves Ne's v_eff monotone
    beyond s_m for any s_m in [0.9, 2] bohr. ``s`` > 0 is the distance from the centre,
    increasing; derivatives are d/ds. Returns (u, du, d2u, info)."""
    s = np.asarray(s, dtype=np.float64)
    beyond = np.nonzero(s >= r_match)[0]
    if beyond.size < 2 or beyond[0] == 0:
        raise ConfigError(f"r_match: {r_match:.4g} bohr must lie inside the grid [{s[0]:.4g}, {s[-1]:.4g}] "
                          "(distance from the centre), with grid points on both sides; choose a radius in it")
    j = int(beyond[0])
    sm = float(s[j])
    A = np.array([[1.0, 1.0 / sm, 1.0 / sm ** 2],
                  [0.0, -1.0 / sm ** 2, -2.0 / sm ** 3],
                  [0.0, 2.0 / sm ** 3, 6.0 / sm ** 4]])
    b = np.array([u[j] - 2 * beta * math.log(sm) + 2 * kappa * sm,
                  du[j] - 2 * beta / sm + 2 * kappa,
                  d2u[j] + 2 * beta / sm ** 2])
    a0, a1, a2 = np.linalg.solve(A, b)
    t = s[j:]
    u_new, du_new, d2u_new = (np.array(a, dtype=np.float64) for a in (u, du, d2u))
    u_new[j:] = a0 + 2 * beta * np.log(t) - 2 * kappa * t + a1 / t + a2 / t ** 2
    du_new[j:] = 2 * beta / t - 2 * kappa - a1 / t ** 2 - 2 * a2 / t ** 3
    d2u_new[j:] = -2 * beta / t ** 2 + 2 * a1 / t ** 3 + 6 * a2 / t ** 4
    info = dict(kappa=kappa, beta=beta, a0=float(a0), a1=float(a1), a2=float(a2), r_match=sm,
                form="n = exp(a0 + 2 beta ln s - 2 kappa s + a1/s + a2/s^2) for s >= r_match, kappa = sqrt(2 IP); "
                     "a0, a1, a2: ln n and its first two derivatives continuous at r_match")
    return u_new, du_new, d2u_new, info


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


def diagnose_side(name, s, k, ip, z_net, geometry, tol=DEFAULT_TOL, min_length=DEFAULT_MIN_LENGTH) -> Side:
    """Find where the tail follows its asymptote (module docstring): within ``tol``, else
    within 2 ``tol`` (a true density's a1/s term can exceed ``tol`` just where a
    basis tail goes wrong), else the first point where it meets the asymptote within ``tol``."""
    delta = 0.5 * (k - asymptote_k(s, ip, z_net, geometry))
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


def auto_match(side: Side) -> float:
    """r_match: MATCH_INSET = min(1, half the stretch's length) bohr inside the end of the
    stretch that follows the asymptote; without such a stretch (``fallback``) 1 bohr past
    where v_eff first meets the asymptote (Ne's raw tail, which oscillates by 0.3 Ha from
    1.5 bohr on, first meets it at 1.0 bohr: r_match = 2; its shipped table: 1.3, by eye)."""
    if side.follows is None:
        raise ConfigError(f"r_match: the tail ({side.name}) {side.note}; check the IP and charge, or give "
                          "--r-match (and --tail-tol) yourself, looking at the diagnostic plot")
    a, b = side.follows
    if side.fallback:
        return a + MATCH_INSET
    return b - min(MATCH_INSET, 0.5 * (b - a))


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
