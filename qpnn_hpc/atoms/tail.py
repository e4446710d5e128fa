"""Tail diagnostics and the graft: where a density's v_eff stops following its asymptote.

Hartree atomic units: distances in bohr, energies in Hartree, k in 1/bohr^2.

Far from a system of net charge z = Z - N + 1 seen by the outermost electron (z = 1 for a
neutral atom), the density decays as

    n(s) ~ exp(a0 + 2 beta ln s - 2 kappa s + a1/s),     kappa = sqrt(2 IP),
    beta = z/kappa - 1  (radial: 3D Laplacian),     beta = z/kappa  (line: 1D),

with s the distance from the centre (r, or |x| on a line centred at x = 0). Its local
kinetic term k = Lap sqrt(n)/sqrt(n) (:func:`kinetic`) and the one-orbital potential
v_eff = mu + k/2 then follow, with a1 = 0,

    k_A(s) = kappa^2 - 2 z/s + c2/s^2,   c2 = beta z/kappa (radial),  beta (beta - 1) (line),
    v_A(s) = mu + k_A(s)/2               (mu = -IP: v_A -> -z/s, the -1/r of a neutral atom).

The deviation delta(s) = v_eff - v_A = (k - k_A)/2 does not depend on the gauge (a1 /= 0
adds kappa a1/(2 s^2): 0.02-0.1 Ha at 3-5 bohr for the shipped tables' fits). A
Gaussian-basis tail decays too fast: ln n bends down like -alpha s^2, k grows like s^2
and v_eff oscillates or rises instead of approaching -z/s.

The diagnosis (:func:`diagnose_side`): the points with abs(delta) <= ``tol`` that form a
stretch at least ``min_length`` long; the first such stretch outwards is the one where
the tail follows the asymptote. If it reaches the table's end the tail is "physical";
otherwise it stops at r_out and the graft matches there (:func:`auto_match`): width
w = min(1, (r_out - r_in)/2) bohr, r_match = r_out - w, ln n blended into the asymptotic
form on [r_out - 2 w, r_out] (a0, a1: least squares of ln n on that window; quintic C2 step,
:func:`graft_log`). Without such a stretch within ``tol``, one within 2 ``tol`` is used
(the 1D model atom's own a1/s term exceeds 0.03 Ha inside 5.3 bohr: a basis tail going
wrong at 6 leaves no 1 bohr within 0.03); without that either, the blend starts where
v_eff first meets the asymptote (width 1 bohr); the summary says which. If v_eff never
meets it, the user must give r_match. Defaults ``tol`` = 0.03 Ha and ``min_length`` = 1 bohr; on the raw (Gaussian-basis)
columns of the shipped tables: Li follows on [4.1, 12] bohr and is left alone; Be follows on
[4.3, 7.9] (then dips 0.03 Ha below and rises 0.2 Ha above the asymptote by 12 bohr) and
is grafted on [5.9, 7.9]; Ne oscillates by 0.3 Ha from 1.5 bohr on, first meets the
asymptote at 1.0 bohr and is grafted on [1, 3] (the shipped Ne graft by eye: [1, 2.5]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from qpnn_hpc.atoms.density_verb import DEFAULT_MIN_LENGTH, DEFAULT_TOL, DEFAULT_WIDTH
from qpnn_hpc.config import ConfigError

RELAX = (1, 2)   # tolerance factors tried in turn for a stretch of min_length (diagnose_side)



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

def smoothstep5(t):
    """Quintic C2 step s(t) (0 for t <= 0, 1 for t >= 1) and its first two derivatives."""
    t = np.clip(t, 0.0, 1.0)
    return t ** 3 * (10 - 15 * t + 6 * t * t), 30 * t * t * (1 - t) ** 2, 60 * t * (1 - t) * (1 - 2 * t)


def graft_log(s, u, du, d2u, kappa: float, beta: float, r_match: float, width: float = DEFAULT_WIDTH,
              fit_window: Optional[tuple[float, float]] = None):
    """Blend u = ln n into u_A = a0 + 2 beta ln s - 2 kappa s + a1/s beyond r_match.

    a0, a1: least squares of u - 2 beta ln s + 2 kappa s on ``fit_window`` (default the
    blend window [r_match - width, r_match + width]); u = (1 - t) u + t u_A with the
    quintic step t over the blend window, so u, u', u'' stay continuous. ``s`` > 0 is the
    distance from the centre, derivatives are d/ds. Returns (u, du, d2u, info)."""
    s = np.asarray(s, dtype=np.float64)
    lo, hi = r_match - width, r_match + width
    f_lo, f_hi = (lo, hi) if fit_window is None else (float(fit_window[0]), float(fit_window[1]))
    w = (s >= f_lo) & (s <= f_hi)
    if w.sum() < 2:
        raise ConfigError(f"r_match: the fit window [{f_lo:.3g}, {f_hi:.3g}] bohr holds {int(w.sum())} grid "
                          "point(s); choose r_match and width inside the grid")
    A = np.stack([np.ones(w.sum()), 1.0 / s[w]], axis=1)
    b = u[w] - 2 * beta * np.log(s[w]) + 2 * kappa * s[w]
    (a0, a1), *_ = np.linalg.lstsq(A, b, rcond=None)
    uA = a0 + 2 * beta * np.log(s) - 2 * kappa * s + a1 / s
    duA = 2 * beta / s - 2 * kappa - a1 / s ** 2
    d2uA = -2 * beta / s ** 2 + 2 * a1 / s ** 3
    t, dt, d2t = smoothstep5((s - lo) / (hi - lo))
    dt, d2t = dt / (hi - lo), d2t / (hi - lo) ** 2
    u_new = (1 - t) * u + t * uA
    du_new = (1 - t) * du + t * duA + dt * (uA - u)
    d2u_new = (1 - t) * d2u + t * d2uA + 2 * dt * (duA - du) + d2t * (uA - u)
    info = dict(kappa=kappa, beta=beta, a0=float(a0), a1=float(a1), r_match=float(r_match),
                width=float(width), fit_window=[f_lo, f_hi],
                form="n = exp(a0 + 2 beta ln s - 2 kappa s + a1/s), kappa = sqrt(2 IP); ln n blended "
                     "with a quintic C2 step on [r_match - width, r_match + width]; a0, a1: least "
                     "squares of ln n on fit_window")
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


def auto_match(side: Side) -> tuple[float, float]:
    """(r_match, width): the blend window ends where the stretch that follows the asymptote
    ends, width min(1, its length/2) bohr; without such a stretch (``fallback``) it starts
    where v_eff first meets the asymptote, width 1 bohr (Ne's raw tail, which oscillates by
    0.3 Ha from 1.5 bohr on, first meets it at 1.0 bohr: blend [1, 3])."""
    if side.follows is None:
        raise ConfigError(f"r_match: the tail ({side.name}) {side.note}; check the IP and charge, or give "
                          "--r-match (and --tail-tol) yourself, looking at the diagnostic plot")
    a, b = side.follows
    if side.fallback:
        return a + DEFAULT_WIDTH, DEFAULT_WIDTH
    width = min(DEFAULT_WIDTH, 0.5 * (b - a))
    return b - width, width


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
