"""Many-electron atoms (seed 000): radial densities, their exact inversion and the gauge.

Hartree atomic units throughout: r in bohr, rho in electrons/bohr^3, energies in Hartree.

One-orbital (Kohn-Sham-like "Bohmian") picture of seed 000: the spherically averaged
density rho(r) is taken as the square of a single nodeless orbital phi = sqrt(rho) that
solves the radial Schroedinger equation with the 3D radial Laplacian,

    -1/2 Lap phi + v_eff phi = mu phi ,     Lap f = f'' + 2 f'/r .

Its exact inversion is

    v_eff(r) = mu + 1/2 Lap sqrt(rho) / sqrt(rho) = mu + 1/2 k(r),
    k(r)     = Lap sqrt(rho)/sqrt(rho) = Lap rho/(2 rho) - rho'^2/(4 rho^2)     (1/bohr^2)
             = u''/2 + u'^2/4 + u'/r ,          u = ln rho .

``k`` is the ``kinetic_local`` column of a tabulated system (:class:`~qpnn_hpc.inverse.systems.
TabulatedDensity`). v_eff is fixed up to the constant mu, the gauge:

* ``"ionisation"``: v_eff -> 0 as r -> infinity. For a neutral atom the density decays as
  rho ~ r^(2 beta) exp(-2 sqrt(2 IP) r), so k -> 2 IP and mu = -IP (Hartree).
* ``"energy"``: mu = E_total, the reference total energy of the same calculation; the
  eigenvalue the network must reproduce is then E_total (the meaning of seed 000 Table 1).

The two differ by the constant E_total + IP = E(cation). The anchor (seed 000 eq. 5) is
(r0, v_eff(r0)) at a point where the density is reliable (default r0 = 2 bohr).

Shipped tables (``qpnn_hpc/data/{li,be,ne}_{energy,ionisation}.npz``, written by
``jobs/atoms/make_densities.py``) hold arrays ``x`` (r), ``density``, ``drho``,
``lap_rho``, ``kinetic_local``, ``potential`` (v_eff in the table's gauge); scalars
``energy`` (the eigenvalue in the table's gauge), ``anchor``, ``anchor_value``, ``mu``,
``e_atom``, ``e_cation``, ``ip``; the string ``gauge``; and ``meta`` (JSON: atom, Z,
method, basis, the graft's constants, ...).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

GAUGES = ("energy", "ionisation")
ATOMS = ("li", "be", "ne")
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_R0 = 2.0


# ----------------------------------------------------------------------------- inversion

def log_derivatives(r, rho, drho, lap_rho):
    """u = ln rho, u' = rho'/rho, u'' = rho''/rho - u'^2 with rho'' = Lap rho - 2 rho'/r."""
    r, rho, drho, lap_rho = (np.asarray(a, dtype=np.float64) for a in (r, rho, drho, lap_rho))
    du = drho / rho
    d2u = (lap_rho - 2.0 * drho / r) / rho - du * du
    return np.log(rho), du, d2u


def kinetic_local(r, rho, drho, lap_rho):
    """k(r) = Lap sqrt(rho)/sqrt(rho) = Lap rho/(2 rho) - rho'^2/(4 rho^2)  (1/bohr^2),
    from rho (1/bohr^3), rho' = d rho/dr and Lap rho = rho'' + 2 rho'/r."""
    rho = np.asarray(rho, dtype=np.float64)
    drho = np.asarray(drho, dtype=np.float64)
    return np.asarray(lap_rho, dtype=np.float64) / (2.0 * rho) - drho * drho / (4.0 * rho * rho)


def kinetic_from_log(r, du, d2u):
    """k(r) from u' and u'' of u = ln rho: u''/2 + u'^2/4 + u'/r."""
    return 0.5 * d2u + 0.25 * du * du + du / np.asarray(r, dtype=np.float64)


def gauge_mu(gauge: str, e_total: float, ip: float) -> float:
    """The constant mu (Hartree): -IP ("ionisation") or E_total ("energy")."""
    if gauge == "ionisation":
        return -float(ip)
    if gauge == "energy":
        return float(e_total)
    raise ValueError(f"unknown gauge {gauge!r}; use one of {GAUGES}")


def invert(r, rho, drho, lap_rho, mu: float = 0.0):
    """Exact inversion v_eff(r) = mu + 1/2 Lap sqrt(rho)/sqrt(rho)  (Hartree)."""
    return mu + 0.5 * kinetic_local(r, rho, drho, lap_rho)


# ----------------------------------------------------------------------------- tail graft

def graft_tail(r, rho, drho, lap_rho, ip: float, r_match: float, z_net: float = 1.0, l: int = 0):
    """Replace the Gaussian-basis tail by the right asymptotic form.

    Beyond the matching radius the density of an atom whose outermost shell has angular
    momentum l decays as
        rho_A(r) = exp(a0 + 2 beta ln r - 2 kappa r + a1/r + a2/r^2 + ... + a5/r^5),
        kappa = sqrt(2 IP),  beta = z_net/kappa - 1  (z_net = Z - N + 1 = 1 for a neutral atom),
    with a1 from the Coulomb series (kappa a1 = l(l+1) - (beta + 1) beta) and a0, a2 .. a5 making
    u = ln rho and its first four derivatives continuous at r_match, so rho, rho', Lap rho,
    v_eff and v_eff's slope and curvature are continuous there
    (:func:`qpnn_hpc.atoms.tail.graft_log`). Returns (rho, drho, lap_rho, info) with info the
    constants (a dict)."""
    from qpnn_hpc.atoms import tail
    r = np.asarray(r, dtype=np.float64)
    kappa = math.sqrt(2.0 * ip)
    u, du, d2u, info = tail.graft_log(r, *log_derivatives(r, rho, drho, lap_rho), kappa,
                                      tail.beta_of(kappa, z_net, "radial"), tail.a1_of(kappa, z_net, "radial", l),
                                      r_match)
    rho_new, drho_new, lap_new = tail.from_log(r, u, du, d2u, "radial")
    info.update(z_net=float(z_net), l=int(l), form=info["form"].replace("n = ", "rho = ").replace("ln n", "ln rho"))
    return rho_new, drho_new, lap_new, info


# ----------------------------------------------------------------------------- tables

def table_path(atom: str, gauge: str = "ionisation") -> Path:
    """The shipped table of ``atom`` (li, be, ne) in ``gauge``."""
    atom = atom.lower()
    if atom not in ATOMS:
        raise ValueError(f"unknown atom {atom!r}; shipped: {ATOMS}")
    if gauge not in GAUGES:
        raise ValueError(f"unknown gauge {gauge!r}; use one of {GAUGES}")
    return DATA_DIR / f"{atom}_{gauge}.npz"


def write_tables(stem: str | Path, r, rho, drho, lap_rho, e_atom: float, e_cation: float,
                 meta: dict, r0: float = DEFAULT_R0) -> list[Path]:
    """Write ``{stem}_{gauge}.npz`` for both gauges; returns the paths.

    Arrays: x (bohr), density, drho, lap_rho, kinetic_local, potential (v_eff in the gauge,
    Hartree: the system's "true" V, so that campaigns record eps and the exact-inversion
    curve beside the learned one); scalars: energy (eigenvalue
    in the gauge = mu), anchor r0, anchor_value v_eff(r0), mu, e_atom, e_cation, ip;
    strings: gauge, geometry ("radial": a spec must say so too) and, JSON-encoded in
    ``meta``, everything in ``meta`` (method, basis, graft, ...)."""
    r = np.asarray(r, dtype=np.float64)
    ip = float(e_cation) - float(e_atom)
    k = kinetic_local(r, rho, drho, lap_rho)
    k0 = float(np.interp(r0, r, k))
    out = []
    for gauge in GAUGES:
        mu = gauge_mu(gauge, e_atom, ip)
        path = Path(f"{stem}_{gauge}.npz")
        np.savez_compressed(
            path, x=r, density=np.asarray(rho, np.float64), drho=np.asarray(drho, np.float64),
            lap_rho=np.asarray(lap_rho, np.float64), kinetic_local=k, potential=mu + 0.5 * k,
            energy=np.float64(mu), anchor=np.float64(r0), anchor_value=np.float64(mu + 0.5 * k0),
            mu=np.float64(mu), e_atom=np.float64(e_atom), e_cation=np.float64(e_cation),
            ip=np.float64(ip), gauge=np.str_(gauge), geometry=np.str_("radial"),
            meta=np.str_(json.dumps(meta, sort_keys=True)))
        out.append(path)
    return out


def load_table(atom_or_path: str | Path, gauge: str = "ionisation") -> dict:
    """A table as a dict of numpy arrays/floats; ``meta`` decoded from JSON."""
    p = Path(atom_or_path)
    if p.suffix != ".npz":
        p = table_path(str(atom_or_path), gauge)
    with np.load(p) as d:
        out = {k: d[k] for k in d.files}
    for k, v in list(out.items()):
        if v.ndim == 0:
            out[k] = str(v) if v.dtype.kind == "U" else float(v)
    if "meta" in out:
        out["meta"] = json.loads(out["meta"])
    return out


def effective_potential(table: dict, mu: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """(r, v_eff) of a loaded table: mu + k/2, mu defaulting to the table's gauge."""
    mu = table["mu"] if mu is None else mu
    return table["x"], mu + 0.5 * table["kinetic_local"]


def barrier(r, v, lo: float = 0.1, hi: float = 4.0) -> tuple[float, float]:
    """Position and height of the maximum of v on [lo, hi] (the shell barrier); NaN where
    r has no point there."""
    r = np.asarray(r)
    m = (r >= lo) & (r <= hi)
    if not m.any():
        return np.nan, np.nan
    i = int(np.argmax(np.asarray(v)[m]))
    return float(r[m][i]), float(np.asarray(v)[m][i])


def data_file(file: str | Path) -> Path:
    """The path of a table: ``file`` as given, or, for ``qpnn_hpc/data/...`` not found from
    the current folder, the package's shipped copy (so campaign files work from any folder)."""
    path = Path(file)
    if not path.exists() and path.parts[:2] == ("qpnn_hpc", "data"):
        path = DATA_DIR.joinpath(*path.parts[2:])
    return path
