"""Analysis: a results file -> markdown tables and PNG plots.

Tasks are grouped by their spec without the seed (one group = one system, method
and grid point, over its trials). Per group: trials done/failed, mean and standard
deviation of the energy, the error of the mean energy against the exact one and the RMSE
of the per-trial energies (all Hartree; errors in mHa), both potential errors (the box eps
of seed 001 eq. 9 and the density-weighted one), the largest R-hat and the done trials with
warnings. The quality checks (:mod:`qpnn_hpc.inverse.quality`): every warning by trial, the
diagnostics per group, and per group of two or more done trials the median learned U with
its 5-95% band across trials and the identified window (band narrow, density not
negligible). Files written before the quality checks (no such columns) show NaN there.
Campaigns on atom tables get seed 000's Tables 1-2, figures and the round trip
(:mod:`qpnn_hpc.atoms.report`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qpnn_hpc.atoms import report as atoms_report
from qpnn_hpc.inverse import quality
from qpnn_hpc.reports import pyplot, save_figure, write_markdown
from qpnn_hpc.stats import sample_std
from qpnn_hpc.campaigns import store as results


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v)
    return out


def groups(table: dict) -> list[dict]:
    """Rows grouped by spec-without-seed; labels name what varies across the campaign."""
    flat = [_flatten({k: v for k, v in s.items() if k != "seed"}) for s in table["spec"]]
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys if len({f.get(k) for f in flat}) > 1 and k not in ("method",)]
    out: dict[str, dict] = {}
    for i, f in enumerate(flat):
        gkey = json.dumps(f, sort_keys=True)
        if gkey not in out:
            extra = ", ".join(f"{k}={json.loads(f[k])}" for k in varying
                              if k != "system.name" and k in f)
            label = f"{table['system'][i]} / {table['method'][i]}" + (f" ({extra})" if extra else "")
            out[gkey] = {"label": label, "rows": []}
        out[gkey]["rows"].append(i)
    return list(out.values())


def column(table: dict, name: str, rows) -> np.ndarray:
    """``table[name][rows]``, NaN (or "" for warnings) where the file has no such column
    (files written before the quality checks)."""
    if name in table:
        return np.asarray(table[name])[rows]
    return np.array([""] * len(rows)) if name == "warnings" else np.full(len(rows), np.nan)


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x[np.isfinite(x)])) if np.isfinite(x).any() else np.nan


def _nanmedian(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.median(x[np.isfinite(x)])) if np.isfinite(x).any() else np.nan


def summary(table: dict, rows: list[int]) -> dict:
    status = table["status"][rows]
    done = [r for r, s in zip(rows, status) if s == results.DONE]
    e = table["energy"][done]
    eps = table["eps"][done]
    rhat = column(table, "rhat", done)
    exact = table["energy_exact"][done[0] if done else rows[0]]  # pending rows hold NaN
    return {
        "done": len(done), "failed": int((status == results.FAILED).sum()),
        "pending": int((status == results.PENDING).sum()),
        "E_mean": float(np.mean(e)) if len(e) else np.nan, "E_std": sample_std(e),
        "E_exact": float(exact),
        "dE_mHa": 1e3 * (float(np.mean(e)) - exact) if len(e) else np.nan,
        "rmse_mHa": 1e3 * float(np.sqrt(np.mean((e - exact) ** 2))) if len(e) else np.nan,
        "eps_mean": float(np.mean(eps)) if len(eps) else np.nan,
        "eps_std": sample_std(eps),
        "eps_density_mean": _nanmean(column(table, "eps_density", done)),
        "residual_median": _nanmedian(column(table, "residual", done)),
        "residual_relative_median": _nanmedian(column(table, "residual_relative", done)),
        "rhat_max": float(np.nanmax(rhat)) if len(done) and np.isfinite(rhat).any() else np.nan,
        "anchor_gap_mean": _nanmean(column(table, "anchor_gap", done)),
        "round_trip_median": _nanmedian(column(table, "round_trip", done)),
        "warned": int(sum(bool(w) for w in column(table, "warnings", done))),
    }


def markdown_table(table: dict) -> str:
    head = ("| system / method | done | with warnings | failed | pending | E mean (Ha) | E std (Ha) | "
            "E exact (Ha) | mean error (mHa) | RMSE (mHa) | eps box (Ha) | eps density (Ha) | R-hat max |\n"
            + "|---" * 13 + "|\n")
    lines = []
    for g in groups(table):
        s = summary(table, g["rows"])
        lines.append(f"| {g['label']} | {s['done']} | {s['warned']} | {s['failed']} | {s['pending']} | "
                     f"{s['E_mean']:.5f} | {s['E_std']:.5f} | {s['E_exact']:.5f} | {s['dE_mHa']:+.2f} | "
                     f"{s['rmse_mHa']:.2f} | {s['eps_mean']:.4f} | {s['eps_density_mean']:.4f} | "
                     f"{s['rhat_max']:.3f} |")
    note = ("\neps box: seed 001 eq. 9, the mean |U - V| over points uniform in the box, the eps the seed "
            "reports (in D > 1 dominated by the box corners, where no density is). eps density: "
            "sqrt of the |psi|^2-weighted mean of (U - V - <U - V>)^2 over the evaluation chains, "
            "gauge-free, where the density lives (:mod:`qpnn_hpc.inverse.quality`). Means over done trials.\n")
    return head + "\n".join(lines) + "\n" + note


def quality_markdown(table: dict, bands: dict) -> str:
    """The quality checks: thresholds, diagnostics per group, the identified windows and
    every warning of a done trial."""
    q = quality
    md = ["## Quality checks\n",
          f"A done trial is flagged when its evaluation chains' split R-hat exceeds {q.RHAT_WARN}, "
          f"|E - E*| exceeds {1e3 * q.ANCHOR_GAP_WARN:g} mHa (E* = V(r0) - k(r0)/2, the energy the density and "
          f"the anchor fix), the residual (the local-energy spread sigma_E over the exact potential's own spread "
          f"sigma(k/2)) exceeds {q.RESIDUAL_WARN}, or the round trip "
          f"(1D line systems: the state of U with the input's nodes) exceeds {q.ROUND_TRIP_WARN} "
          "(thresholds and their measurement: qpnn_hpc/inverse/quality.py).\n",
          "| system / method | sigma_E median (mHa) | residual median | E - E* mean (mHa) | round trip median | "
          "identified window (bohr) |", "|---" * 6 + "|"]
    for n, g in enumerate(groups(table)):
        s = summary(table, g["rows"])
        if not s["done"]:
            continue
        win = bands.get(n, {}).get("window")
        win = (f"[{win[0]:.2f}, {win[1]:.2f}]" if win is not None and np.isfinite(win[0]) else
               "none" if win is not None else "- (fewer than 2 trials)")
        md.append(f"| {g['label']} | {1e3 * s['residual_median']:.2f} | {s['residual_relative_median']:.4f} | "
                  f"{1e3 * s['anchor_gap_mean']:+.2f} | "
                  f"{s['round_trip_median']:.4f} | {win} |")
    md.append(f"\nIdentified window: the longest stretch of the plotted line where the 5-95% band of U across "
              f"trials is narrower than {1e3 * q.BAND_NARROW:g} mHa and the density exceeds "
              f"{q.DENSITY_FLOOR:g} of its maximum there.\n")
    flagged = [i for i in range(len(table["status"])) if table["status"][i] == results.DONE
               and column(table, "warnings", [i])[0]]
    if flagged:
        md += ["| trial | system / method | seed | warnings |", "|---" * 4 + "|"]
        for i in flagged:
            md.append(f"| {table['id'][i]} | {table['system'][i]} / {table['method'][i]} | "
                      f"{table['spec'][i].get('seed', '?')} | {column(table, 'warnings', [i])[0]} |")
    else:
        md.append("No done trial has a warning." if "warnings" in table else
                  "This file predates the quality checks: no warnings stored.")
    return "\n".join(md) + "\n"


def bands(table: dict) -> dict:
    """Per group index with >= 2 done trials: grid, median, p5, p95 of U and the window."""
    out = {}
    for n, g in enumerate(groups(table)):
        rows = [r for r in g["rows"] if table["status"][r] == results.DONE]
        if len(rows) < 2:
            continue
        grid = table["grid"][rows[0]]
        med, p5, p95 = quality.band(np.stack([table["potential"][r] for r in rows]))
        dens = column(table, "density_line", [rows[0]])[0] if "density_line" in table else None
        out[n] = {"grid": grid, "median": med, "p5": p5, "p95": p95,
                  "window": quality.identified_window(grid, p5, p95, dens)}
    return out


def _plots(table: dict, out: Path, band_by_group: dict) -> list[str]:
    plt = pyplot()
    files = []
    for n, g in enumerate(groups(table)):
        rows = [r for r in g["rows"] if table["status"][r] == results.DONE]
        if not rows:
            continue
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        x = table["grid"][rows[0]]
        v = table["potential_true"][rows[0]]
        b = band_by_group.get(n)
        if b is None:
            for r in rows:
                a1.plot(x, table["potential"][r], lw=0.8, alpha=0.7)
        else:
            a1.fill_between(x, b["p5"], b["p95"], color="C0", alpha=0.3, label="U 5-95% across trials")
            a1.plot(x, b["median"], "C0", lw=1.2, label="U median")
            if np.isfinite(b["window"][0]):
                a1.axvspan(*b["window"], color="C2", alpha=0.12, label="identified window")
        if np.isfinite(v).any():
            a1.plot(x, v, "k--", lw=1.5, label="true V")
            lo, hi = np.percentile(v[np.isfinite(v)], [2, 98])
            a1.set_ylim(lo - 0.2 * (hi - lo) - 0.5, hi + 0.2 * (hi - lo) + 0.5)
            a1.legend()
        a1.set_xlabel("x (bohr)")
        a1.set_ylabel("U (Hartree)")
        a1.set_title(g["label"], fontsize=9)
        e = table["energy"][rows]
        a2.errorbar(np.arange(len(rows)), e, yerr=table["energy_err"][rows], fmt="o")
        exact = table["energy_exact"][rows[0]]
        if np.isfinite(exact):
            a2.axhline(exact, color="k", ls="--", label="exact")
            a2.legend()
        a2.set_xlabel("trial")
        a2.set_ylabel("E (Hartree)")
        files.append(save_figure(fig, out, f"group{n:02d}.png"))
    return files


def write_report(path: str | Path, table: dict, out: Path) -> Path:
    """Write ``report.md`` and one PNG per group into the folder ``out``; returns its path."""
    band_by_group = bands(table)
    pngs = _plots(table, out, band_by_group)
    md = [f"# Campaign {table['campaign_name']}\n", f"Results file: `{path}`; energies in Hartree.\n",
          markdown_table(table), ""]
    md += [f"![{p}]({p})" for p in pngs]
    md += ["", quality_markdown(table, band_by_group)]
    atoms_md, atoms_pngs = atoms_report.section(table, groups(table), out)
    if atoms_md:
        md += ["", atoms_md]
    return write_markdown(out, md, atoms_pngs)
