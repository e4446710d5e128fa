"""Report of a solve1d results file: per dataset and split, the systems done and the ranges
of the exact energies (Hartree), what the rows state of their accuracy (the measured worst
grid errors, the unbound rows), the one-electron densities and the exact exchange-correlation
potentials of a few systems."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qpnn_hpc.campaigns import store
from qpnn_hpc.exact1d.dataset import SCALAR_KEYS, accuracy
from qpnn_hpc.reports import pyplot, save_figure, write_markdown

SHOWN = ("E1", "E2", "T", "A", "Eg")


def markdown_table(table: dict) -> str:
    head = ("| dataset | split | done | failed | pending | " +
            " | ".join(f"{k} min .. max (Ha)" for k in SHOWN) + " | A < 0 |\n" + "|---" * (6 + len(SHOWN)) + "|\n")
    lines = []
    for d in dict.fromkeys(table["dataset"]):
        for s in dict.fromkeys(table["split"]):
            rows = (table["dataset"] == d) & (table["split"] == s)
            done = rows & (table["status"] == store.DONE)
            ranges = [f"{np.min(table[k][done]):.4f} .. {np.max(table[k][done]):.4f}" if done.any() else "-"
                      for k in SHOWN]
            lines.append(f"| {d} | {s} | {int(done.sum())} | {int((rows & (table['status'] == store.FAILED)).sum())}"
                         f" | {int((rows & (table['status'] == store.PENDING)).sum())} | " + " | ".join(ranges) +
                         f" | {int((table['A'][done] < 0).sum())} |")
    return head + "\n".join(lines) + "\n"


def accuracy_table(table: dict) -> str:
    """The worst case over the done rows of each dataset and split (mHa), and the unbound rows;
    '' for a file made before the accuracy columns."""
    if "bound" not in table:
        return ""
    head = ("| dataset | split | rows | unbound (bound = 0) | max E1_grid_error (mHa) | max E2_grid_error (mHa) "
            "| max E2_grid_error, bound rows (mHa) |\n" + "|---" * 7 + "|\n")
    lines = []
    for d in dict.fromkeys(table["dataset"]):
        for s in dict.fromkeys(table["split"]):
            done = (table["dataset"] == d) & (table["split"] == s) & (table["status"] == store.DONE)
            if not done.any():
                continue
            a = accuracy({k: table[k][done] for k in ("bound", "E1_grid_error", "E2_grid_error")})
            lines.append(f"| {d} | {s} | {a['rows']} | {a['unbound']} | {1e3 * a['max_E1_grid_error']:.2f} | "
                         f"{1e3 * a['max_E2_grid_error']:.2f} | {1e3 * a['max_E2_grid_error_bound']:.2f} |")
    return ("Accuracy each row states (Richardson grid error as dx^2 from one coarser solve; box error not "
            "included; where bound = 0, E2, A and Eg depend on the box):\n\n" + head + "\n".join(lines) + "\n")


def _plot(table: dict, out: Path) -> list[str]:
    plt = pyplot()
    x = np.asarray(table["x"])
    names = []
    for d in dict.fromkeys(table["dataset"]):
        rows = np.nonzero((table["dataset"] == d) & (table["status"] == store.DONE))[0]
        if not len(rows):
            continue
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for i in rows[:: max(1, len(rows) // 6)]:
            a1.plot(x, table["n1"][i], lw=1)
            a2.plot(x, table["V"][i], lw=1)
        a1.set_xlabel("x (bohr)"), a1.set_ylabel("n1 (1/bohr)"), a2.set_xlabel("x (bohr)"), a2.set_ylabel("V (Ha)")
        fig.suptitle(f"{d}: a few systems")
        names.append(save_figure(fig, out, f"{d}_profiles.png"))
        if "v_xc" in table:
            fig, ax = plt.subplots(figsize=(6, 4))
            for i in rows[:: max(1, len(rows) // 6)]:
                Z, alpha, r = table["parameters"][i]
                ax.plot(x, table["v_xc"][i], lw=1, label=f"Z={Z:.3g} a={alpha:.3g} r={r:.3g}")
            ax.set_xlabel("x (bohr)"), ax.set_ylabel("v_xc (Ha)"), ax.legend(fontsize=7)
            ax.set_title(f"{d}: exact v_xc inside the trust window")
            names.append(save_figure(fig, out, f"{d}_v_xc.png"))
    return names


def write_report(path: str | Path, table: dict, out: Path) -> Path:
    """``report.md`` and the profile figures into the folder ``out``; returns its path."""
    md = [f"# 1D datasets: {table['campaign_name']}\n", f"Results file: `{path}`; energies in Hartree. "
          f"Scalars stored: {', '.join(SCALAR_KEYS)}.\n", markdown_table(table), accuracy_table(table), ""]
    return write_markdown(out, md, _plot(table, out))
