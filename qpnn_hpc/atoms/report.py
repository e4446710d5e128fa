"""The atoms section of a report: seed 000 Tables 1-2, figs. 4-9 and the round trip.

Energies in Hartree (errors in mHa), r in bohr. For every group of done trials whose
system is a shipped-style atom table (``qpnn_hpc/atoms/densities.py``: a radial table with a gauge):

* Table 1: the reference eigenvalue in the table's gauge (E_total in "energy", -IP in
  "ionisation") and the mean learned energy (eq. 10) over the trials, beside seed 000's
  Table 1 (its own SCI reference, its QPNN mean, the difference).
* Table 2: RMSE and sample standard deviation of the per-trial errors, the Metropolis
  (|psi|^2-weighted, eq. 8) estimate's mean error, beside seed 000's Table 2 RMSE.
* The potential: max |U - v_eff| on [0.5, 8] bohr against the exact inversion of the
  same table (median and worst trial), and the shell maximum (position, height) of the
  exact and of the learned potential.
* The round trip (:mod:`qpnn_hpc.atoms.radial`): the forward eigenvalue's error and the relative
  L2 difference between the ground-state density of U and the input density, beside the
  floor of the method (the same solve with the exact inversion itself).
* Figures: per-trial energy errors (seed figs. 7-9), learned vs exact potentials with
  the shell maximum (figs. 4-6).
* An independent check of every tabulated density a campaign used (radial or line, any
  table with a gauge), beyond the comparison with the table's own inversion
  (:func:`check_table`): how far the table's v_eff is from the physical asymptote
  v_A = mu + IP - z/s + ... (:mod:`qpnn_hpc.atoms.tail`; z = Z - N + 1) on the outer half of
  the table, s >= s_max/2 (a Gaussian-basis tail that never reaches the asymptote shows
  here, however well the trials learn it); where the table carries an exact potential
  (``potential_exact``: an analytic system, the 1D solver), max abs(v_eff - v_exact) and the
  trials' max abs(U - v_exact) on [0.5, 8] bohr; and the tail status written by
  ``qpnn-hpc density``, a table marked "untrusted" or "unchecked" flagged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qpnn_hpc.atoms import densities as atoms
from qpnn_hpc.atoms import radial
from qpnn_hpc.atoms import tail as tails
from qpnn_hpc.atoms.density_verb import FLAGGED
from qpnn_hpc.campaigns import store as results
from qpnn_hpc.atoms.densities import data_file
from qpnn_hpc.reports import pyplot, save_figure
from qpnn_hpc.stats import sample_std

# seed 000 Table 1 (its SCI reference, QPNN mean over 10 trials) and Table 2 (RMSE +- std), Hartree
SEED000_TABLE1 = {"li": (-7.477487, -7.5431), "be": (-14.66101, -14.6142), "ne": (-128.888004, -128.8584)}
SEED000_TABLE2 = {"li": (0.07, 0.04), "be": (0.01, 0.02), "ne": (0.01, 0.009)}
POTENTIAL_WINDOW = (0.5, 8.0)     # bohr: where the learned potential is compared with the inversion


def _atom_table(system: dict):
    """The atom table behind a spec's system, or None if it is not one."""
    if system.get("name") != "tabulated" or system.get("geometry") != "radial":
        return None
    try:
        t = atoms.load_table(data_file(system["file"]))
    except (OSError, ValueError, KeyError):
        return None
    if "gauge" not in t or "mu" not in t:
        return None
    t["meta"] = t["meta"] if isinstance(t.get("meta"), dict) else {}
    t["meta"].setdefault("atom", Path(system["file"]).stem)   # a table without a name: its file's
    return t


def potential_deviation(grid, u, v, window=POTENTIAL_WINDOW) -> float:
    """max |U - v_eff| on the window (Hartree)."""
    m = np.isfinite(grid) & (grid >= window[0]) & (grid <= window[1])
    return float(np.max(np.abs(u[m] - v[m]))) if m.any() else np.nan  # NaN: the grid misses the window


def analyse(table: dict, groups: list[dict]) -> list[dict]:
    """One dict per group of ``groups`` (``report.groups``: rows of one spec without its seed)
    whose system is an atom table; done trials only. A group's ``label`` is kept as
    ``setting`` where an (atom, gauge) pair has more than one group (a grid or an ablation
    on one table), "" otherwise."""
    out = []
    for grp in groups:
        rows = [i for i in grp["rows"] if table["status"][i] == results.DONE]
        t = _atom_table(table["spec"][rows[0]]["system"]) if rows else None
        if t is None:
            continue
        atom = t["meta"]["atom"].lower()
        r_tab, v_tab = atoms.effective_potential(t)
        e_ref = float(t["energy"])
        err = 1e3 * (table["energy"][rows] - e_ref)
        err_m = 1e3 * (table["energy_metropolis"][rows] - e_ref)
        dev, bar, trip = [], [], []
        for i in rows:
            grid = table["grid"][i]
            m = np.isfinite(grid)
            g, u = grid[m], table["potential"][i][m]
            dev.append(potential_deviation(g, u, table["potential_true"][i][m]))
            bar.append(atoms.barrier(g, u))
            trip.append(radial.round_trip(t, g, u))
        floor = radial.round_trip(t, r_tab, v_tab)
        out.append(dict(
            label=grp["label"], atom=atom, gauge=t["gauge"], method=t["meta"].get("method", ""),
            basis=t["meta"].get("basis", ""), e_ref=e_ref, rows=rows,
            energy=table["energy"][rows], err_mha=err,
            mean_err_mha=float(err.mean()), rmse_mha=float(np.sqrt(np.mean(err ** 2))),
            std_mha=sample_std(err),
            mean_err_metropolis_mha=float(err_m.mean()),
            potential_dev=np.array(dev), barrier_exact=atoms.barrier(r_tab, v_tab),
            barrier_learned=np.array(bar),
            trip_eig_mha=1e3 * np.array([x["eigenvalue_error"] for x in trip]),
            trip_l2=np.array([x["density_l2"] for x in trip]),
            floor_eig_mha=1e3 * floor["eigenvalue_error"], floor_l2=floor["density_l2"],
            grid=[table["grid"][i] for i in rows], potential=[table["potential"][i] for i in rows],
            potential_true=[table["potential_true"][i] for i in rows],
            r_tab=r_tab, v_tab=v_tab))
    pairs = [(g["atom"], g["gauge"]) for g in out]
    for g in out:
        g["setting"] = g.pop("label") if pairs.count((g["atom"], g["gauge"])) > 1 else ""
    order = {a: n for n, a in enumerate(atoms.ATOMS)}
    return sorted(out, key=lambda g: (order.get(g["atom"], 99), g["gauge"]))


def _name(g: dict) -> str:
    """Row label of the tables: the atom, and the setting where one atom/gauge has several."""
    return g["atom"].capitalize() + (f" ({g['setting']})" if g["setting"] else "")


def markdown(groups: list[dict]) -> str:
    lines = ["## Atoms: seed 000 Tables 1-2, potentials and the round trip\n",
             "Energy: eq. 10 (mean local energy over uniform points). Errors against the reference "
             "eigenvalue of the same table and gauge. Seed 000 compares with its own SCI energies.\n",
             "### Table 1: reference vs learned energy (Hartree)\n",
             "| atom | gauge | reference (method, basis) | E ref | E learned (mean) | error (mHa) | trials | "
             "seed 000 E_FCI | seed 000 E_QPNN | seed 000 error (mHa) |",
             "|---" * 10 + "|"]
    for g in groups:
        s_ref, s_q = SEED000_TABLE1.get(g["atom"], (np.nan, np.nan))
        seed = (f"{s_ref:.6f} | {s_q:.4f} | {1e3 * (s_q - s_ref):+.1f}" if g["atom"] in SEED000_TABLE1
                else "- | - | -")
        ref = ", ".join(x for x in (g["method"].split(";")[0], g["basis"]) if x)
        lines.append(f"| {_name(g)} | {g['gauge']} | {ref} | "
                     f"{g['e_ref']:.6f} | {g['energy'].mean():.6f} | {g['mean_err_mha']:+.2f} | {len(g['rows'])} | "
                     f"{seed} |")
    lines += ["", "### Table 2: spread of the per-trial errors (mHa)\n",
              "| atom | gauge | RMSE | sample std | Metropolis (eq. 8) mean error | seed 000 RMSE +- std |",
              "|---" * 6 + "|"]
    for g in groups:
        s_r, s_s = SEED000_TABLE2.get(g["atom"], (np.nan, np.nan))
        seed = f"{1e3 * s_r:.0f} +- {1e3 * s_s:.0f}" if g["atom"] in SEED000_TABLE2 else "-"
        lines.append(f"| {_name(g)} | {g['gauge']} | {g['rmse_mha']:.2f} | {g['std_mha']:.2f} | "
                     f"{g['mean_err_metropolis_mha']:+.2f} | {seed} |")
    lo, hi = POTENTIAL_WINDOW
    lines += ["", "### The learned potential against the exact inversion (Hartree, bohr)\n",
              f"| atom | gauge | max abs(U - v_eff) on [{lo}, {hi}]: median | worst trial | "
              "shell maximum, exact (r, v) | learned (mean r, mean v) |", "|---" * 6 + "|"]
    for g in groups:
        (rb, vb), bl = g["barrier_exact"], g["barrier_learned"]
        lines.append(f"| {_name(g)} | {g['gauge']} | {np.median(g['potential_dev']):.4f} | "
                     f"{g['potential_dev'].max():.4f} | ({rb:.3f}, {vb:+.4f}) | "
                     f"({bl[:, 0].mean():.3f}, {bl[:, 1].mean():+.4f}) |")
    lines += ["", "### Round trip: the ground state of U against the input density\n",
              "U on the training domain, the exact inversion outside (qpnn_hpc/radial.py). "
              "The floor row solves with the exact inversion everywhere.\n",
              "| atom | gauge | eigenvalue error (mHa): floor | learned, mean | density L2: floor | learned, mean | "
              "learned, worst |", "|---" * 7 + "|"]
    for g in groups:
        lines.append(f"| {_name(g)} | {g['gauge']} | {g['floor_eig_mha']:+.3f} | "
                     f"{g['trip_eig_mha'].mean():+.2f} | {g['floor_l2']:.2e} | {g['trip_l2'].mean():.2e} | "
                     f"{g['trip_l2'].max():.2e} |")
    return "\n".join(lines) + "\n"


def plots(groups: list[dict], out: Path) -> list[str]:
    plt = pyplot()
    names = []
    atoms_seen = list(dict.fromkeys(g["atom"] for g in groups))
    fig, axes = plt.subplots(1, len(atoms_seen), figsize=(4.5 * len(atoms_seen), 3.6), squeeze=False)
    for ax, atom in zip(axes[0], atoms_seen):
        for g in (g for g in groups if g["atom"] == atom):
            label = f"{g['gauge']} gauge" + (f", {g['setting']}" if g["setting"] else "")
            ax.plot(np.arange(len(g["rows"])), g["err_mha"], "o-", label=label)
        ax.axhline(0.0, color="k", lw=0.8)
        for sign in (-1, 1):
            ax.axhline(sign * 1.6, color="g", ls=":", lw=0.8, label="+-1.6 mHa" if sign > 0 else None)
        ax.set_title(f"{atom.capitalize()}: energy error per trial (seed figs. 7-9)", fontsize=9)
        ax.set_xlabel("trial")
        ax.set_ylabel("E - E_ref (mHa)")
        ax.legend(fontsize=8)
    names.append(save_figure(fig, out, "atoms_energy_per_trial.png"))

    fig, axes = plt.subplots(2, len(atoms_seen), figsize=(4.5 * len(atoms_seen), 6.4), squeeze=False,
                             sharex=True)
    for ax, dax, atom in zip(axes[0], axes[1], atoms_seen):
        mine = [g for g in groups if g["atom"] == atom]
        g = next((g for g in mine if g["gauge"] == "ionisation"), mine[0])
        for x, u, v in zip(g["grid"], g["potential"], g["potential_true"]):
            m = np.isfinite(x)
            ax.plot(x[m], u[m], lw=0.8, alpha=0.6)
            dax.plot(x[m], u[m] - v[m], lw=0.8, alpha=0.7)
        ax.plot(g["r_tab"], g["v_tab"], "k--", lw=1.2, label="exact inversion")
        rb, vb = g["barrier_exact"]
        ax.plot([rb], [vb], "kv", label=f"shell maximum ({rb:.2f}, {vb:.2f})")
        ax.set_xscale("log")
        ax.set_xlim(0.1, 10)
        ax.set_ylim(min(-3 * abs(vb), -2.0), 1.5 * abs(vb) + 0.5)
        ax.set_title(f"{atom.capitalize()} ({g['gauge']} gauge): learned U, all trials (figs. 4-6)", fontsize=9)
        ax.set_ylabel("U (Hartree)")
        ax.legend(fontsize=8)
        dax.axvspan(*POTENTIAL_WINDOW, color="0.9", label="comparison window")
        dax.axhline(0.0, color="k", lw=0.8)
        dax.set_ylim(-0.1, 0.1)
        dax.set_xlabel("r (bohr)")
        dax.set_ylabel("U - v_eff (Hartree)")
        dax.legend(fontsize=8)
    names.append(save_figure(fig, out, "atoms_potential.png"))
    return names


# ----------------------------------------------------------------------------- independent check

def check_table(t: dict) -> dict:
    """The independent check of one loaded table (module docstring): ``asymptote`` max
    abs(v_eff - v_A) on s >= s_max/2 (Hartree; NaN without an IP), ``window`` that range,
    ``exact`` max abs(v_eff - v_exact) on s in [0.5, 8] (NaN without ``potential_exact``),
    ``status`` the recorded tail status."""
    geo = str(t.get("geometry", "radial"))
    x = np.asarray(t["x"], dtype=np.float64)
    s = np.abs(x)
    meta = t.get("meta") if isinstance(t.get("meta"), dict) else {}
    z_net = float(meta.get("z_net", (meta.get("graft") or {}).get("z_net", 1.0)))
    ell = int((meta.get("tail") or {}).get("l", 0))    # tables before the l term: 0
    ip = float(t.get("ip", np.nan))
    v = float(t["mu"]) + 0.5 * np.asarray(t["kinetic_local"], dtype=np.float64)
    far = tails.outer_half(s)
    asym = np.nan
    if np.isfinite(ip) and ip > 0 and far.any():
        asym = float(np.max(np.abs(tails.deviation(s[far], np.asarray(t["kinetic_local"])[far], ip, z_net, geo,
                                                   ell))))
    exact = np.nan
    if "potential_exact" in t:
        w = (s >= POTENTIAL_WINDOW[0]) & (s <= POTENTIAL_WINDOW[1])
        if w.any():
            exact = float(np.max(np.abs(v[w] - np.asarray(t["potential_exact"])[w])))
    status = str(t.get("tail_status", "grafted" if meta.get("graft") else "not recorded"))  # shipped: grafted
    return dict(geometry=geo, asymptote=asym, window=(0.5 * float(s.max()), float(s.max())), exact=exact,
                status=status, z_net=z_net)


def checks(table: dict, groups: list[dict]) -> list[dict]:
    """One row per tabulated table the campaign's done trials used, with :func:`check_table`
    and, where the table has an exact potential, the trials' median and worst max abs(U -
    v_exact) on [0.5, 8] bohr (U in the table's gauge, v_exact on the trial's grid)."""
    by_file: dict = {}
    for grp in groups:
        rows = [i for i in grp["rows"] if table["status"][i] == results.DONE]
        if not rows:
            continue
        system = table["spec"][rows[0]]["system"]
        if system.get("name") != "tabulated":
            continue
        by_file.setdefault(system["file"], []).extend(rows)
    out = []
    for file, rows in by_file.items():
        try:
            t = atoms.load_table(data_file(file))
        except (OSError, ValueError, KeyError):
            continue
        if "mu" not in t or "kinetic_local" not in t:
            continue
        c = dict(check_table(t), file=file, trials=len(rows), learned=np.array([]))
        if "potential_exact" in t:
            dev = []
            for i in rows:
                g = table["grid"][i]
                m = np.isfinite(g) & (np.abs(g) >= POTENTIAL_WINDOW[0]) & (np.abs(g) <= POTENTIAL_WINDOW[1])
                if m.any():
                    ref = np.interp(g[m], t["x"], t["potential_exact"])
                    dev.append(float(np.max(np.abs(table["potential"][i][m] - ref))))
            c["learned"] = np.array(dev)
        out.append(c)
    return out


def checks_markdown(rows: list[dict]) -> str:
    lo, hi = POTENTIAL_WINDOW
    lines = ["### Independent check of the tables\n",
             "Beside the comparison with each table's own inversion: v_eff against the physical asymptote "
             "v_A = mu + IP - z/s + l(l+1)/(2 s^2) (z = Z - N + 1, l the outer shell's, 0 on a line; "
             "qpnn_hpc/atoms/tail.py) on the outer half of the "
             f"table, and against the table's exact potential, if it has one, on [{lo}, {hi}] bohr (Hartree).\n"]
    for c in rows:
        if c["status"] in FLAGGED:
            lines.append(f"**Warning: `{c['file']}` has an {c['status']} tail** (written by `qpnn-hpc density` "
                         "without a graft, with a graft still off the asymptote, or without an IP): the "
                         "learned potential there follows a tail that is not physical.\n")
    lines += ["| table | geometry | tail | max abs(v_eff - v_A), outer half (window) | "
              "max abs(v_eff - v_exact) | trials | learned max abs(U - v_exact): median | worst |",
              "|---" * 8 + "|"]
    for c in rows:
        asym = "n/a (no IP)" if not np.isfinite(c["asymptote"]) else \
            f"{c['asymptote']:.4f} ([{c['window'][0]:.2f}, {c['window'][1]:.2f}])"
        exact = "-" if not np.isfinite(c["exact"]) else f"{c['exact']:.2e}"
        med, worst = (("-", "-") if not len(c["learned"]) else
                      (f"{np.median(c['learned']):.4f}", f"{c['learned'].max():.4f}"))
        status = f"**{c['status'].upper()}**" if c["status"] in FLAGGED else c["status"]
        lines.append(f"| `{c['file']}` | {c['geometry']} | {status} | {asym} | {exact} | {c['trials']} | "
                     f"{med} | {worst} |")
    return "\n".join(lines) + "\n"


def section(table: dict, groups: list[dict], out: Path) -> tuple[str, list[str]]:
    """Markdown and PNG names of the atoms section: the atom tables and figures (radial atom
    tables), then the independent check of every tabulated density ("" and [] without either);
    ``groups`` as from ``report.groups(table)``."""
    found = analyse(table, groups)
    checked = checks(table, groups)
    md, pngs = "", []
    if found:
        md, pngs = markdown(found), plots(found, out)
    if checked:
        md += ("\n" if md else "") + checks_markdown(checked)
    return md, pngs

