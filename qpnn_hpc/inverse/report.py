"""Analysis: a results file -> markdown tables and PNG plots.

Tasks are grouped by their spec without the seed (one group = one system, method
and grid point, over its trials). Per group: trials done/failed, mean and standard
deviation of the energy and of eps, the error of the mean energy against the exact
one and the RMSE of the per-trial energies (all Hartree; errors in mHa). Campaigns on
atom tables get seed 000's Tables 1-2, figures and the round trip
(:mod:`qpnn_hpc.atoms.report`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qpnn_hpc.atoms import report as atoms_report
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


def summary(table: dict, rows: list[int]) -> dict:
    status = table["status"][rows]
    done = [r for r, s in zip(rows, status) if s == results.DONE]
    e = table["energy"][done]
    eps = table["eps"][done]
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
    }


def markdown_table(table: dict) -> str:
    head = ("| system / method | done | failed | pending | E mean (Ha) | E std (Ha) | E exact (Ha) | "
            "mean error (mHa) | RMSE (mHa) | eps mean (Ha) | eps std (Ha) |\n" + "|---" * 11 + "|\n")
    lines = []
    for g in groups(table):
        s = summary(table, g["rows"])
        lines.append(f"| {g['label']} | {s['done']} | {s['failed']} | {s['pending']} | {s['E_mean']:.5f} | "
                     f"{s['E_std']:.5f} | {s['E_exact']:.5f} | {s['dE_mHa']:+.2f} | {s['rmse_mHa']:.2f} | "
                     f"{s['eps_mean']:.4f} | {s['eps_std']:.4f} |")
    return head + "\n".join(lines) + "\n"


def _plots(table: dict, out: Path) -> list[str]:
    plt = pyplot()
    files = []
    for n, g in enumerate(groups(table)):
        rows = [r for r in g["rows"] if table["status"][r] == results.DONE]
        if not rows:
            continue
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        x = table["grid"][rows[0]]
        v = table["potential_true"][rows[0]]
        for r in rows:
            a1.plot(x, table["potential"][r], lw=0.8, alpha=0.7)
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
    pngs = _plots(table, out)
    md = [f"# Campaign {table['campaign_name']}\n", f"Results file: `{path}`; energies in Hartree.\n",
          markdown_table(table), ""]
    md += [f"![{p}]({p})" for p in pngs]
    atoms_md, atoms_pngs = atoms_report.section(table, groups(table), out)
    if atoms_md:
        md += ["", atoms_md]
    return write_markdown(out, md, atoms_pngs)
