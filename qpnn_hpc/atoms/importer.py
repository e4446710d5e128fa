"""Bring your own density: ``qpnn-hpc density`` turns columns into a table campaigns accept.

    qpnn-hpc density he.csv --electrons 2 --energy -2.90372 --cation-energy -2.0 --out he.npz \\
        --campaign he.toml
    qpnn-hpc run he.toml --out he.h5 && qpnn-hpc report he.h5 --out he-report

Hartree atomic units: x or r in bohr, n in electrons/bohr^D, energies in Hartree.

Steps (:func:`make_table`):

1. Read the columns (:mod:`qpnn_hpc.atoms.columns`: x or r, n, optionally n', Lap n and
   an exact potential v) from .npz, .csv/.txt or HDF5; drop end points with n <= 0.
2. Derivatives not given: a quintic spline of ln n (its measured error is in
   :mod:`qpnn_hpc.atoms.columns`).
3. Invert: k = Lap sqrt(n)/sqrt(n), v_eff = mu + k/2, with the gauge mu = -IP
   ("ionisation", v_eff -> 0), E ("energy": the eigenvalue is the total energy) or 0
   ("unknown": no gauge data; the eigenvalue is then 0). IP = E(cation) - E; for one
   electron E(cation) = 0.
4. The tail (:mod:`qpnn_hpc.atoms.tail`): where v_eff follows the asymptote
   -z/s + l(l+1)/(2 s^2) (z = Z - N + 1, l the outer shell's, ``outer_l``) within ``tail_tol``;
   if it stops before the grid's end, graft ln n onto the asymptotic series there (or at
   ``r_match``; v_eff and its first two derivatives continuous), unless ``graft`` is off. Writes the
   diagnostic PNG and prints one line saying what was done.
5. Write the table (the shipped tables' format, :mod:`qpnn_hpc.atoms.densities`, one
   gauge): x, density, drho, lap_rho, kinetic_local, potential, energy (= mu), anchor,
   anchor_value, mu, e_atom, e_cation, ip (NaN where unknown), gauge, geometry,
   ``tail_status`` ("physical": follows the asymptote to the end; "grafted"; "untrusted":
   does not and was not grafted, or its graft is still over 2 ``tail_tol`` from the
   asymptote on the outer half; "unchecked": no IP, so no check), the raw columns when
   grafted, ``potential_exact`` when a v column was given (shifted into the gauge: v -> 0
   far away is taken as the ionisation gauge), and ``meta`` (JSON: atom, Z, electrons,
   method, the derivative method, the tail diagnosis and graft, the input file and its
   SHA-256, every option, the library versions). Campaigns name it as a ``tabulated``
   system; one whose tail is "untrusted" or "unchecked" is flagged where it is loaded and in
   the report.
"""
from __future__ import annotations

import json
import math
import platform
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from qpnn_hpc.atoms import columns as cols_mod
from qpnn_hpc.atoms import tail as tails
from qpnn_hpc.atoms.densities import DEFAULT_R0
from qpnn_hpc.atoms.density_verb import DensityConfig
from qpnn_hpc.atoms.shells import outer_l
from qpnn_hpc.config import check

def gauge_data(cfg: DensityConfig, electrons: float) -> tuple[float, float, float, str]:
    """(IP, E, E_cation, gauge); NaN where unknown. E_cation = 0 for one electron."""
    e, ec, ip = (math.nan if v is None else float(v) for v in (cfg.energy, cfg.cation_energy, cfg.ip))
    if math.isnan(ec) and abs(electrons - 1.0) < 1e-9:
        ec = 0.0
    if math.isnan(ip) and not (math.isnan(e) or math.isnan(ec)):
        ip = ec - e
        check(ip > 0, "cation_energy", f"E(cation) - E = {ip:.6g} Ha: the IP must be > 0; check both energies")
    elif not math.isnan(ip):
        if math.isnan(ec) and not math.isnan(e):
            ec = e + ip
        elif math.isnan(e) and not math.isnan(ec):
            e = ec - ip
        elif not (math.isnan(e) or math.isnan(ec)):
            check(abs(ec - e - ip) < 1e-6, "ip", f"--ip {ip} disagrees with E(cation) - E = {ec - e:.8g}; "
                  "give two of the three")
    gauge = cfg.gauge or ("ionisation" if not math.isnan(ip) else "energy" if not math.isnan(e) else "unknown")
    check(gauge != "ionisation" or not math.isnan(ip), "gauge",
          "ionisation needs the IP: give --ip, or --energy and --cation-energy")
    check(gauge != "energy" or not math.isnan(e), "gauge", "energy needs the total energy: give --energy")
    return ip, e, ec, gauge


def _mu(gauge, ip, e) -> float:
    return {"ionisation": -ip, "energy": e, "unknown": 0.0}[gauge]


def _versions() -> dict:
    import scipy
    from qpnn_hpc import __version__
    return {"qpnn_hpc": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


#: The default radial anchor keeps this far from a graft's matching radius (bohr), where the
#: input's columns give way to the series and v_eff's third derivative jumps (tail.graft_log);
#: the same margin bounds the "beyond the graft" deviation that the printed line reports. Ne's
#: table before the C2 graft: r0 = 2 on its blend [1.0, 2.5] sat on a 0.1 Ha bump of the blend
#: (one campaign trial +70 mHa).
KINK_MARGIN = 0.5


def _outer_l(electrons: float) -> int:
    """The outer shell's l by aufbau (qpnn_hpc.atoms.shells); beyond Kr the user gives it."""
    try:
        return outer_l(int(round(electrons)))
    except ValueError:
        check(False, "outer_l", f"N = {electrons:g} electrons is beyond Kr: give --outer-l, the angular "
              "momentum of the outermost shell")


def _anchor(x, n, geometry, given, kinks) -> tuple[float, str]:
    """The gauge anchor r0 (bohr) and a note ("" if none). Given: kept (it must lie on the
    grid; one within KINK_MARGIN of a graft's r_match is kept with a note). Default on a
    line: the densest grid point (never a node or a tail); radially: DEFAULT_R0, moved to
    KINK_MARGIN past a graft's r_match it lies within KINK_MARGIN of; the grid's midpoint if
    that leaves the grid."""
    def near_kink(r):
        return next((r_match for sign, r_match in kinks if abs(sign * r - r_match) < KINK_MARGIN), None)

    if given is not None:
        check(x[0] <= given <= x[-1], "anchor", f"{given} lies outside the grid [{x[0]:.4g}, {x[-1]:.4g}]; "
              "choose a point in it")
        near = near_kink(given)
        return float(given), ("" if near is None else
                              f"anchor {given:g} lies within {KINK_MARGIN:g} bohr of the graft's r_match "
                              f"{near:.2f}, where the input gives way to the asymptotic series: choose a "
                              "point further from it")
    if geometry == "line":
        r0 = float(x[np.argmax(n)])
    else:
        r0 = DEFAULT_R0
        near = near_kink(r0)
        if near is not None:
            r0 = near + KINK_MARGIN
    if not x[0] <= r0 <= x[-1]:
        r0 = 0.5 * (x[0] + x[-1])
    return float(r0), ""


def make_table(cfg: DensityConfig, extra_meta: Optional[dict] = None) -> dict:
    """Read, invert, diagnose and graft the tail, write the table (module docstring);
    ``extra_meta`` (e.g. a generator's basis size and timings) is added to ``meta``.
    Returns a summary: table, plot, tail_status, line (the one line printed by the verb), ..."""
    raw, source = cols_mod.read(cfg.input, cfg.columns, cfg.group)
    data, notes = cols_mod.clean(raw, cfg.geometry)
    x, n, geo = data["x"], data["n"], cfg.geometry
    dn, lap, how = cols_mod.derivatives(x, n, geo, data.get("dn"), data.get("lap"))
    norm = cols_mod.normalisation(x, n, geo)
    electrons = float(cfg.electrons) if cfg.electrons is not None else float(max(1, round(norm)))
    Z = float(cfg.charge) if cfg.charge is not None else electrons
    z_net = Z - electrons + 1.0
    check(z_net > 0, "charge", f"Z - N + 1 = {z_net:g}: the outermost electron must be bound; check --charge")
    ip, e_atom, e_cation, gauge = gauge_data(cfg, electrons)
    mu = _mu(gauge, ip, e_atom)
    u, du, d2u = tails.to_log(x, n, dn, lap, geo)
    k_raw = tails.kinetic(x, du, d2u, geo)
    check(np.all(np.isfinite(k_raw)), "input", "the inversion is not finite somewhere; check n', Lap n")

    ell = 0 if geo == "line" else cfg.outer_l if cfg.outer_l is not None else _outer_l(electrons)
    tail_info: dict = {"tolerance": cfg.tail_tol, "min_length": cfg.min_length, "z_net": z_net, "l": ell,
                       "sides": []}
    grafted, untrusted, switches = False, False, []
    u_new, du_new, d2u_new = u.copy(), du.copy(), d2u.copy()
    if math.isnan(ip):
        check(cfg.r_match is None, "r_match", "the graft needs the IP; give --ip (or --energy and --cation-energy)")
        status, what = "unchecked", "tail not checked (no IP: give --ip, or --energy and --cation-energy)"
    else:
        kappa = math.sqrt(2.0 * ip)
        beta = tails.beta_of(kappa, z_net, geo)
        a1 = tails.a1_of(kappa, z_net, geo, ell)
        said = []
        for side_name, idx in tails.sides(x, geo):
            s = np.abs(x[idx])
            sign = 1.0 if geo == "radial" or x[idx[0]] > 0 else -1.0
            side = tails.diagnose_side(side_name, s, k_raw[idx], ip, z_net, geo, cfg.tail_tol, cfg.min_length, ell)
            rec = {"side": side_name, "diagnosis": side.note,
                   "follows": None if side.follows is None else [float(side.follows[0]), float(side.follows[1])],
                   "physical": bool(side.physical)}
            text = side.note
            if cfg.graft and (cfg.r_match is not None or not side.physical):
                rms = None
                if cfg.r_match is not None:
                    r_match = float(cfg.r_match)
                else:
                    r_match, rms = tails.auto_match(side, u[idx], sign * du[idx], d2u[idx], kappa, beta, a1, ip,
                                                    z_net, geo, ell)
                gu, gdu, gd2u, info = tails.graft_log(s, u[idx], sign * du[idx], d2u[idx], kappa, beta, a1, r_match)
                r_match = info["r_match"]
                u_new[idx], du_new[idx], d2u_new[idx] = gu, sign * gdu, gd2u
                after = tails.deviation(s, tails.kinetic(x[idx], du_new[idx], d2u_new[idx], geo), ip, z_net, geo, ell)
                far = s >= r_match + KINK_MARGIN
                dev = float(np.max(np.abs(after[far]))) if far.any() else math.nan
                outer = float(np.max(np.abs(after[tails.outer_half(s)])))
                rec.update(graft=info, r_match=r_match, max_dev_after=dev, outer_dev=outer,
                           chosen="given" if rms is None else "auto")
                switches.append((sign, r_match))
                grafted = True
                how = ("given" if rms is None else
                       f"auto: closest to the asymptote on the outer half, rms {1e3 * rms:.2g} mHa")
                text += (f"; grafted at r_match = {r_match:.2f} ({how}), max abs(v_eff - v_A) beyond "
                         f"{r_match + KINK_MARGIN:.2f}: {dev:.3g} Ha")
                # the series carried the input's error out: not a physical tail. The bound is the
                # diagnosis's loosest (RELAX): the 1D model atom's own -1/(s + 1) is 0.033 Ha off -1/s at 5
                if outer > tails.RELAX[-1] * cfg.tail_tol:
                    untrusted = True
                    text += (f"; but {outer:.3g} Ha from the asymptote on the outer half (s >= "
                             f"{0.5 * s[-1]:.2f}), over {tails.RELAX[-1]:g} x tail_tol: the table is marked "
                             "untrusted; give another --r-match (where the input still follows the asymptote)")
            elif not side.physical:
                untrusted = True
                text += "; NOT grafted (--no-graft): the table is marked untrusted"
            tail_info["sides"].append(rec)
            said.append((f"{side_name}: " if geo == "line" else "") + text)
        status = "untrusted" if untrusted else "grafted" if grafted else "physical"
        what = "tail " + "; ".join(said) if said else "no tail reaches 1 bohr from x = 0: not checked"
        if not said:
            status = "unchecked"
    tail_info["status"] = status
    n_new, dn_new, lap_new = (tails.from_log(x, u_new, du_new, d2u_new, geo) if grafted else (n, dn, lap))
    k = tails.kinetic(x, du_new, d2u_new, geo) if grafted else k_raw
    r0, anchor_note = _anchor(x, n_new, geo, cfg.anchor, switches)
    if anchor_note:
        notes = [*notes, anchor_note]
    name = cfg.name or Path(cfg.input).stem
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(atom=name, Z=Z, electrons=electrons, z_net=z_net, electrons_integral=norm,
                method=cfg.method or f"imported by qpnn-hpc density from {Path(cfg.input).name}",
                basis=cfg.basis, geometry=geo, derivatives=how, tail=tail_info,
                graft=(tail_info["sides"][0].get("graft") if grafted else None), notes=notes,
                source={"file": str(cfg.input), "sha256": cols_mod.sha256(cfg.input),
                        "columns": {r: str(c) for r, c in source.items()}},
                options=asdict(cfg), versions=_versions(), generator="qpnn-hpc density",
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=" ".join(sys.argv))
    meta.update(extra_meta or {})
    arrays = dict(x=x, density=n_new, drho=dn_new, lap_rho=lap_new, kinetic_local=k, potential=mu + 0.5 * k)
    if grafted:
        arrays.update(density_raw=n, drho_raw=dn, lap_rho_raw=lap, kinetic_local_raw=k_raw)
    if "v" in data:
        shift = 0.0 if gauge == "unknown" or math.isnan(ip) else mu + ip   # v -> 0 far away: the ionisation gauge
        arrays["potential_exact"] = data["v"] + shift
    np.savez_compressed(out, **arrays, energy=np.float64(mu), mu=np.float64(mu), anchor=np.float64(r0),
                        anchor_value=np.float64(mu + 0.5 * float(np.interp(r0, x, k))),
                        e_atom=np.float64(e_atom), e_cation=np.float64(e_cation), ip=np.float64(ip),
                        gauge=np.str_(gauge), geometry=np.str_(geo), tail_status=np.str_(status),
                        meta=np.str_(json.dumps(meta, sort_keys=True, default=str)))
    plot_path = None
    if cfg.plot != "" and not math.isnan(ip):
        plot_path = Path(cfg.plot) if cfg.plot else out.with_name(out.stem + "_tail.png")
        s_all = np.abs(x) if geo == "line" else x
        with np.errstate(divide="ignore"):
            v_asym = mu + 0.5 * tails.asymptote_k(np.where(s_all > 0, s_all, np.nan), ip, z_net, geo, ell)
        spans = [(sign * r_match - KINK_MARGIN, sign * r_match + KINK_MARGIN) for sign, r_match in switches]
        tails.plot(plot_path, x, mu + 0.5 * k_raw, (mu + 0.5 * k) if grafted else None, v_asym, spans,
                   cfg.tail_tol, f"{name}: v_eff ({gauge} gauge), tail {status}")
    line = (f"qpnn-hpc density: {cfg.input} -> {out} ({geo}, N = {electrons:g}, Z = {Z:g}, "
            f"integral of n = {norm:.4f}, gauge {gauge}" + ("" if math.isnan(ip) else f", IP = {ip:.6f} Ha")
            + f"); {how}; {what}" + (f"; plot {plot_path}" if plot_path else "")
            + (f"; {'; '.join(notes)}" if notes else ""))
    return dict(table=out, plot=plot_path, tail_status=status, gauge=gauge, mu=mu, ip=ip, line=line,
                electrons=electrons, Z=Z, x=x)


# ----------------------------------------------------------------------------- starter campaign

def write_campaign(path: str | Path, table: str | Path, geometry: str, x, trials: int = 3,
                   epochs: int = 500) -> Path:
    """A trial campaign on the table with the jobs/atoms.toml recipe (radial: input ln r,
    volume-weighted loss, exact anchor; 64-128-128 tanh residual, 5000 points per epoch,
    Adam 1e-2 -> 1e-4). The table's path is written as given: relative to the folder
    ``qpnn-hpc run`` is started from. Domain: radial [max(0.1, r_1), min(10, r_end)] bohr,
    line the whole grid."""
    lo, hi = (max(0.1, float(x[0])), min(10.0, float(x[-1]))) if geometry == "radial" else (float(x[0]), float(x[-1]))
    radial = geometry == "radial"
    text = f"""# Written by `qpnn-hpc density` for {table}: the jobs/atoms.toml recipe, {trials} trial(s) of {epochs} epochs.
#   qpnn-hpc run {Path(path).name} --out {Path(path).stem}.h5 && qpnn-hpc report {Path(path).stem}.h5 --out {Path(path).stem}-report
name = "{Path(path).stem}"
description = "QPNN on the imported density {table}"
trials = {int(trials)}
methods = ["qpnn"]

[defaults]
dtype = "float32"
model = {{ widths = [64, 128, 128], activation = "tanh", residual = true, init_scale = 1.0{", log_radius = true" if radial else ""} }}
train = {{ epochs = {int(epochs)}, points = 5000, lr = 1e-2, lr_final = 1e-4, weight_decay = 1e-4, clip_norm = 1.0 }}
loss = {{ anchor_mode = "exact"{", volume_weight = true" if radial else ""} }}
sampler = {{ chains = 500, burn_in = 500, thin = 5 }}
eval = {{ eps_points = 1000, energy_sweeps = 100, uniform_energy_points = 10000, grid_points = 4000 }}

[[systems]]
name = "tabulated"
file = "{table}"
geometry = "{geometry}"
lo = {lo!r}
hi = {hi!r}
"""
    Path(path).write_text(text)
    return Path(path)
