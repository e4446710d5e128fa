"""A user's density as columns: reading them (.npz, .csv/.txt, HDF5) and the derivatives.

Units: x or r in bohr, n in electrons/bohr^D (D = 3 radial, 1 line), n' in 1/bohr^(D+1),
Lap n in 1/bohr^(D+2) (radial Lap n = n'' + 2 n'/r; line Lap n = n''), v in Hartree.

Roles of the columns: ``x`` (also named r), ``n`` (rho, density), optional ``dn`` (drho,
n'), ``lap`` (lap_n, lap_rho, laplacian) and ``v`` (an exact potential, v_exact,
potential_exact: the independent reference the report compares with). Files with names
(.npz arrays, HDF5 datasets, a text header line, optionally after ``#``) are matched by
those names, or by ``ROLE=NAME`` pairs; headerless text columns are taken in the order
x, n, dn, lap (2-4 columns), or in the order of ``ROLE,ROLE,...`` pairs given.

Derivatives not given (:func:`derivatives`): u = ln n is interpolated by a quintic spline
(scipy ``make_interp_spline``, k = 5, not-a-knot ends) through every grid point, and
u', u'' are its derivatives; a given n' is used as is and, without Lap n, u'' is the
derivative of the quintic spline of u' = n'/n. Measured on the analytic two-shell density
n = 2 (2.7^3/pi) exp(-5.4 r) + (0.65^3/pi) exp(-1.3 r) on r = 0.05 .. 12 bohr (tests/atoms/
test_density_import.py): the max abs error of k = Lap sqrt(n)/sqrt(n) on [0.1, 10] bohr is
8e-9 / 5e-6 / 2e-3 1/bohr^2 (v_eff: half of that, Hartree) at dr = 0.01 / 0.05 / 0.2 bohr
with n in full precision; at dr = 0.01 with n rounded to 12 / 8 significant digits,
1.4e-7 / 1.8e-3 (a second derivative amplifies the rounding by ~1/dr^2: write 12 or more
digits, or give the analytic n', Lap n). Hydrogen 1s (u linear in r, dr = 0.01): v_eff =
-1/r to 2e-10 Ha from full precision, 8e-4 Ha on [0.5, 8] from 8 digits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np

from qpnn_hpc.config import ConfigError

ROLES = ("x", "n", "dn", "lap", "v")
ALIASES = {"x": ("x", "r"), "n": ("n", "rho", "density"),
           "dn": ("dn", "drho", "n'", "rho'", "dn_dr", "dn_dx"),
           "lap": ("lap", "lap_n", "lap_rho", "laplacian"),
           "v": ("v", "v_exact", "potential_exact")}
POSITIONAL = ("x", "n", "dn", "lap")
DERIVATIVES = ("quintic interpolating spline of ln n (scipy make_interp_spline, k = 5, not-a-knot) "
               "through every point; u', u'' its derivatives")


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_columns(spec: Optional[str]) -> tuple[dict, list]:
    """``--columns``: "ROLE=NAME,..." (named files) or "ROLE,ROLE,..." (text column order)."""
    if not spec:
        return {}, []
    named, order = {}, []
    for item in (p.strip() for p in spec.split(",") if p.strip()):
        role, _, name = item.partition("=")
        role = role.strip()
        if role not in ROLES:
            raise ConfigError(f"columns: unknown role {role!r} in {spec!r}; roles are {', '.join(ROLES)} "
                              "(e.g. --columns x=r,n=rho or --columns x,n,dn)")
        if name:
            named[role] = name.strip()
        else:
            order.append(role)
    if named and order:
        raise ConfigError(f"columns: {spec!r} mixes ROLE=NAME and ROLE; use one form")
    return named, order


def _pick(names: list[str], named: dict, where: str) -> dict:
    """role -> the column name it takes (by ``named``, else by the aliases)."""
    lower = {nm.lower(): nm for nm in names}
    out = {}
    for role in ROLES:
        if role in named:
            if named[role] not in names:
                raise ConfigError(f"columns: {where} has no column {named[role]!r} (for {role}); it has "
                                  f"{', '.join(names)}")
            out[role] = named[role]
            continue
        hit = next((lower[a] for a in ALIASES[role] if a in lower), None)
        if hit is not None:
            out[role] = hit
    for role in ("x", "n"):
        if role not in out:
            raise ConfigError(f"columns: {where} has no {role} column (names tried: {', '.join(ALIASES[role])}; "
                              f"it has {', '.join(names)}); name it with --columns {role}=NAME")
    return out


def _text(path: Path, named: dict, order: list) -> tuple[dict, dict]:
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    delim = "," if any("," in ln for ln in lines if not ln.startswith("#")) else None
    header, data = None, []
    for ln in lines:
        body = ln.lstrip("#").strip()
        tokens = [t.strip() for t in body.split(delim)] if body else []
        try:
            data.append([float(t) for t in tokens])
            if ln.startswith("#"):
                data.pop()       # a commented numeric line: not data
        except ValueError:
            if not data and tokens:
                header = tokens  # the last non-numeric line before the data names the columns
    if not data:
        raise ConfigError(f"input: {path} holds no numeric rows; give whitespace- or comma-separated columns")
    width = {len(r) for r in data}
    if len(width) != 1:
        raise ConfigError(f"input: {path} has rows of {sorted(width)} columns; every row needs the same number")
    table = np.array(data, dtype=np.float64)
    ncol = table.shape[1]
    if header is not None and len(header) == ncol and not order:
        try:
            pick = _pick(header, named, str(path))
            return {r: table[:, header.index(c)] for r, c in pick.items()}, pick
        except ConfigError:
            if named:
                raise
            header = None    # a comment line that names no x and n: columns by position
    if named:
        raise ConfigError(f"columns: {path} has no header line to match names against; give the order, "
                          f"e.g. --columns {','.join(POSITIONAL[:ncol])}")
    order = order or (list(POSITIONAL[:ncol]) if 2 <= ncol <= 4 else [])
    if len(order) != ncol:
        raise ConfigError(f"columns: {path} has {ncol} columns; say what they are, e.g. --columns "
                          f"{','.join(POSITIONAL[:min(ncol, 4)])}{',v' if ncol > 4 else ''}")
    for role in ("x", "n"):
        if role not in order:
            raise ConfigError(f"columns: --columns {','.join(order)} has no {role}")
    return {r: table[:, i] for i, r in enumerate(order)}, {r: f"column {i + 1}" for i, r in enumerate(order)}


def read(path: str | Path, columns: Optional[str] = None, group: Optional[str] = None) -> tuple[dict, dict]:
    """The columns of ``path`` as {role: float64 array} and {role: where it came from}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"input: {path} does not exist; give a .npz, .csv, .txt or .h5 file of columns")
    named, order = parse_columns(columns)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path) as d:
                data = {k: d[k] for k in d.files}
        except (OSError, ValueError) as e:
            raise ConfigError(f"input: cannot read {path} as .npz ({e})") from None
        data = {k: v for k, v in data.items() if v.ndim == 1}
        pick = _pick(list(data), named, str(path))
        return {r: np.asarray(data[c], dtype=np.float64) for r, c in pick.items()}, pick
    if suffix in (".h5", ".hdf5"):
        import h5py
        with h5py.File(path, "r") as f:
            node = f[group] if group else f
            data = {k: node[k][()] for k in node if isinstance(node[k], h5py.Dataset) and node[k].ndim == 1}
        pick = _pick(list(data), named, f"{path}{':' + group if group else ''}")
        return {r: np.asarray(data[c], dtype=np.float64) for r, c in pick.items()}, pick
    if suffix in (".csv", ".txt", ".dat", ".tsv", ""):
        return _text(path, named, order)
    raise ConfigError(f"input: {path}: unknown type {suffix!r}; use .npz, .csv/.txt or .h5")


def clean(cols: dict, geometry: str) -> tuple[dict, list[str]]:
    """Checked, trimmed columns and notes on what was dropped: non-positive n at the ends
    (a code's zeros beyond its grid; both ends on a line), a radial point at r = 0."""
    notes = []
    x, n = cols["x"], cols["n"]
    lengths = {k: v.shape for k, v in cols.items()}
    if len({s for s in lengths.values()}) != 1 or x.ndim != 1:
        raise ConfigError(f"columns: need 1D columns of one length, got {lengths}")
    bad = ~np.isfinite(np.stack(list(cols.values())))
    if bad.any():
        role = list(cols)[int(np.nonzero(bad.any(axis=1))[0][0])]
        raise ConfigError(f"columns: {int(bad.sum())} NaN/inf value(s) (first in {role}); clean the input")
    if np.all(np.diff(x) < 0):
        cols = {k: v[::-1] for k, v in cols.items()}
        x, n = cols["x"], cols["n"]
    if not np.all(np.diff(x) > 0):
        raise ConfigError("columns: x must be strictly increasing (or decreasing); sort the rows, drop repeats")
    keep = np.ones(len(x), bool)
    if geometry == "radial" and x[0] <= 0:
        keep &= x > 0
        notes.append(f"dropped {int((x <= 0).sum())} point(s) at r <= 0")
    pos = np.nonzero(n > 0)[0]
    if pos.size == 0:
        raise ConfigError("columns: n has no positive value; is the n column the density?")
    i0, i1 = (pos[0] if geometry == "line" else 0), pos[-1]
    if (n[i0:i1 + 1] <= 0).any():
        j = i0 + int(np.nonzero(n[i0:i1 + 1] <= 0)[0][0])
        raise ConfigError(f"columns: n <= 0 at x = {x[j]:.4g} inside the grid; the one-orbital inversion "
                          "needs n > 0: cut the grid there")
    if i1 < len(x) - 1 or i0 > 0:
        notes.append(f"dropped {len(x) - 1 - i1 + i0} end point(s) with n <= 0")
    keep[:i0] = False
    keep[i1 + 1:] = False
    cols = {k: v[keep] for k, v in cols.items()}
    if len(cols["x"]) < 10:
        raise ConfigError(f"columns: {len(cols['x'])} usable points; give at least 10")
    return cols, notes


def derivatives(x, n, geometry: str, dn=None, lap=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(n', Lap n, how): the given columns where present, else from the quintic spline of
    ln n (module docstring; Lap n = n'' (+ 2 n'/r radially))."""
    from scipy.interpolate import make_interp_spline
    from qpnn_hpc.atoms.tail import from_log
    x = np.asarray(x, dtype=np.float64)
    u = np.log(n)
    if dn is not None and lap is not None:
        return np.asarray(dn, np.float64), np.asarray(lap, np.float64), "n', Lap n as given"
    if dn is not None:
        du = np.asarray(dn, np.float64) / n
        d2u = make_interp_spline(x, du, k=5)(x, 1)
        how = "n' as given; Lap n from the derivative of a quintic spline of n'/n"
    else:
        spl = make_interp_spline(x, u, k=5)
        du, d2u = spl(x, 1), spl(x, 2)
        how = DERIVATIVES if lap is None else "n' from a quintic spline of ln n; Lap n as given"
        if lap is not None:
            return n * du, np.asarray(lap, np.float64), how
    _, dn_, lap_ = from_log(x, u, du, d2u, geometry)
    return (dn_ if dn is None else np.asarray(dn, np.float64)), lap_, how


def normalisation(x, n, geometry: str) -> float:
    """The electron count of the columns: 4 pi int n r^2 dr (radial) or int n dx (line), trapezoid."""
    x = np.asarray(x, dtype=np.float64)
    w = 4.0 * np.pi * x * x if geometry == "radial" else np.ones_like(x)
    f = w * n
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(x)))
