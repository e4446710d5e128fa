"""Convergence of E1 and E2 with grid density and box size (seed 002, Fig. 2).

    python benchmarks/convergence1d.py --out results_convergence1d          # ~5 min, 1 core
    python benchmarks/convergence1d.py --out /tmp/conv --quick              # ~1 min

Systems: the 1D hydrogen model (Z = 1, alpha = 1; exact E1 = -0.5), the four corners of
the atoms' (Z, alpha) range and the molecules at r = 2 and r = 6 (Z = 1, alpha = 0.75).
13-point stencil, hard walls, box x in [-L/2, L/2].

* Grid density: L = 30 bohr, points per bohr p = 4..32 (--quick: ..20). Reference: Richardson
  extrapolation in dx^2 from p = 20 and p = 40 (the kink of |x| at each nucleus, a grid
  point here, makes the error ~dx^2 whatever the stencil), so box errors cancel.
  ``--quick``: from p = 10 and 20.
* Box size: p = 12, L = 6..50. Reference: the largest box.
* Molecules: E1(r) over the training r values at 12, 24 and 48 points per bohr against
  96, and the residual of a smooth fit (grid-scale noise: the kinks at +-r/2 fall at
  varying offsets from the grid points).
* Best estimate of the infinite-grid, infinite-box energy:
  E(L=30, Richardson) + E(L_max, 12) - E(L=30, 12). Also shown: the seed's reference,
  L = 30 and 20 points per bohr.

Threshold: 0.8 mHa per particle (seed 002's "double chemical accuracy"): 0.8 mHa for E1,
1.6 mHa for E2. Prints tables and the smallest p and L meeting it; writes
``convergence_points_per_bohr.png``, ``convergence_box.png`` and ``convergence1d.json``
to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from qpnn_hpc.exact1d import dataset as dataset1d  # noqa: E402
from qpnn_hpc.exact1d import solver as solver1d

THRESHOLD = 0.8e-3  # Ha per particle

SYSTEMS = {  # label: (kind, Z, alpha, r)
    "H (Z=1, a=1)": ("atom", 1.0, 1.0, 0.0),
    "Z=0.5, a=0.65": ("atom", 0.5, 0.65, 0.0),
    "Z=0.5, a=1": ("atom", 0.5, 1.0, 0.0),
    "Z=2, a=0.65": ("atom", 2.0, 0.65, 0.0),
    "Z=2, a=1": ("atom", 2.0, 1.0, 0.0),
    "mol r=2": ("molecule", 1.0, 0.75, 2.0),
    "mol r=6": ("molecule", 1.0, 0.75, 6.0),
}


def energies(system, box, ppb):
    """(E1, E2) in Ha; NaN where the box cannot hold the molecule (box <= r + 2 bohr)."""
    kind, Z, alpha, r = system
    if kind == "molecule" and box <= r + 2:
        return float("nan"), float("nan")
    spec = dataset1d.SystemSpec(kind, Z, alpha, r, box=float(box), points_per_bohr=float(ppb))
    x = spec.grid()
    V = spec.potential(x)
    one = solver1d.solve_one_electron(x, V)
    two = solver1d.solve_two_electrons(x, V)
    return one.E, two.E


def first_converged(values, errors, tol):
    """Smallest value from which every error (this one and all finer/larger) is below tol."""
    ok = np.abs(np.asarray(errors)) <= tol  # NaN (no result) counts as not converged
    for i in range(len(values)):
        if ok[i:].all():
            return values[i]
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for the PNGs and the JSON")
    ap.add_argument("--quick", action="store_true", help="coarser reference (p = 10, 20), fewer boxes")
    ap.add_argument("--ref-box", type=float, default=30.0, help="box of the grid-density study (bohr)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    ppbs = [4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20] + ([] if args.quick else [24, 28, 32])
    rich = (10, 20) if args.quick else (20, 40)
    boxes = [6, 8, 10, 12, 14, 16, 20, 24, 30] + ([] if args.quick else [40, 50])
    box_ppb = 12
    L = args.ref_box

    results = {}
    t0 = time.perf_counter()
    for label, system in SYSTEMS.items():
        grid = {p: energies(system, L, p) for p in sorted(set(ppbs) | set(rich))}
        size = {b: energies(system, b, box_ppb) for b in boxes}
        e_coarse, e_fine = np.array(grid[rich[0]]), np.array(grid[rich[1]])
        ratio = (rich[1] / rich[0]) ** 2
        grid_ref = (ratio * e_fine - e_coarse) / (ratio - 1)  # Richardson, error ~ dx^2
        box_ref = np.array(size[boxes[-1]])
        L_in_boxes = L in size
        box_shift = (box_ref - np.array(size[L])) if L_in_boxes else np.zeros(2)
        best = grid_ref + box_shift
        seed_ref = np.array(grid[20]) if 20 in grid else None
        results[label] = dict(system=system, grid={str(p): grid[p] for p in grid},
                              box={str(b): size[b] for b in boxes}, grid_ref=grid_ref.tolist(),
                              box_ref=box_ref.tolist(), best=best.tolist(),
                              seed_ref=None if seed_ref is None else seed_ref.tolist())
        print(f"[{time.perf_counter() - t0:6.0f} s] {label}: done", flush=True)

    # ---- tables
    tol = np.array([THRESHOLD, 2 * THRESHOLD])
    summary = {}
    print(f"\nGrid density at L = {L:g} bohr (13-point stencil); error = E - E(Richardson p = {rich[0]}, {rich[1]}) in mHa")
    for label, res in results.items():
        ref = np.array(res["grid_ref"])
        print(f"\n{label}: E1(ref) = {ref[0]:.7f}, E2(ref) = {ref[1]:.7f} Ha")
        print(f"  {'p':>4} {'E1':>13} {'err E1':>9} {'E2':>13} {'err E2':>9}")
        errs = []
        for p in ppbs:
            e = np.array(res["grid"][str(p)])
            errs.append(e - ref)
            print(f"  {p:4d} {e[0]:13.7f} {1e3 * (e[0] - ref[0]):9.4f} {e[1]:13.7f} {1e3 * (e[1] - ref[1]):9.4f}")
        errs = np.array(errs)
        summary[label] = {"p_E1": first_converged(ppbs, errs[:, 0], tol[0]),
                          "p_E2": first_converged(ppbs, errs[:, 1], tol[1])}
        res["grid_errors"] = errs.tolist()
    h = results["H (Z=1, a=1)"]
    print(f"\nH model check: Richardson E1 = {h['grid_ref'][0]:.8f} (exact -0.5; "
          f"difference {1e3 * (h['grid_ref'][0] + 0.5):.4f} mHa)")

    print(f"\nBox size at {box_ppb} points per bohr; error = E - E(L = {boxes[-1]}) in mHa; A = E1 - E2")
    for label, res in results.items():
        ref = np.array(res["box_ref"])
        print(f"\n{label}:")
        print(f"  {'L':>4} {'E1':>13} {'err E1':>9} {'E2':>13} {'err E2':>9} {'A':>10}")
        errs = []
        for b in boxes:
            e = np.array(res["box"][str(b)])
            errs.append(e - ref)
            print(f"  {b:4d} {e[0]:13.7f} {1e3 * (e[0] - ref[0]):9.4f} {e[1]:13.7f} "
                  f"{1e3 * (e[1] - ref[1]):9.4f} {e[0] - e[1]:10.6f}")
        errs = np.array(errs)
        summary[label].update(L_E1=first_converged(boxes, errs[:, 0], tol[0]),
                              L_E2=first_converged(boxes, errs[:, 1], tol[1]))
        res["box_errors"] = errs.tolist()

    print("\nDefault grid L = 14 bohr, 12 points per bohr (169 points): error vs best estimate "
          "(Richardson at L = 30 + box correction to the largest box) and vs seed's reference "
          "(L = 30, 20 points per bohr), mHa")
    print(f"  {'system':15s} {'err E1':>9} {'err E2':>9} {'err A':>9} {'err Eg':>9} "
          f"{'E1 vs seed':>10} {'E2 vs seed':>10}  p(E1) p(E2) L(E1) L(E2)")
    default_errors = {}
    for label, res in results.items():
        e = np.array(energies(res["system"], 14.0, 12.0))
        best = np.array(res["best"])
        d = e - best
        seed = e - np.array(res["seed_ref"]) if res["seed_ref"] is not None else (np.nan, np.nan)
        dA, dEg = d[0] - d[1], d[1] - 2 * d[0]
        default_errors[label] = dict(E1=d[0], E2=d[1], A=dA, Eg=dEg, E1_vs_seed=seed[0], E2_vs_seed=seed[1])
        s = summary[label]
        print(f"  {label:15s} {1e3 * d[0]:9.4f} {1e3 * d[1]:9.4f} {1e3 * dA:9.4f} {1e3 * dEg:9.4f} "
              f"{1e3 * seed[0]:10.4f} {1e3 * seed[1]:10.4f}  {s['p_E1']!s:>5} {s['p_E2']!s:>5} "
              f"{s['L_E1']!s:>5} {s['L_E2']!s:>5}")
    print(f"\n(p: points per bohr from which |error| <= {THRESHOLD * 1e3:g} mHa per particle at "
          f"L = {L:g}; L: box from which it holds at {box_ppb} points per bohr; None: never "
          "within the range studied)")

    def worst(key):
        vals = [s[key] for s in summary.values()]
        return None if any(v is None for v in vals) else max(vals)

    print(f"all systems: p >= {worst('p_E1')} (E1), {worst('p_E2')} (E2); "
          f"L >= {worst('L_E1')} (E1), {worst('L_E2')} (E2)")

    # ---- kinks off the grid: E1(r) of the molecules' training set on a coarse grid
    print("\nMolecules' training set (50 r values; the kinks at +-r/2 fall at varying offsets "
          "from the grid points), 14 bohr box: E1 - E1(96 points per bohr) over r, and the "
          "residual of a degree-8 polynomial fit of E1(r) (non-smoothness), mHa")
    r_values = np.array([s.r for s in dataset1d.dataset_specs("molecules", "train")])
    e1 = {}
    for p in (12, 24, 48, 96):
        x = np.linspace(-7.0, 7.0, 14 * p + 1)
        e1[p] = np.array([solver1d.solve_one_electron(
            x, solver1d.softened_molecule_potential(x, 1.0, 0.75, r)).E for r in r_values])
    noise = {}
    for p in (12, 24, 48):
        err = e1[p] - e1[96]
        fit = np.polyval(np.polyfit(r_values, e1[p], 8), r_values)
        noise[p] = dict(err_min=float(err.min()), err_max=float(err.max()),
                        fit_residual=float(np.max(np.abs(e1[p] - fit))))
        print(f"  {p:3d} points per bohr: error from {1e3 * err.min():8.4f} to {1e3 * err.max():8.4f}, "
              f"fit residual {1e3 * noise[p]['fit_residual']:.4f}")

    # ---- figures
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, xs, key, xlabel, title in (
            ("convergence_points_per_bohr.png", ppbs, "grid_errors", "grid points per bohr",
             f"L = {L:g} bohr, reference: Richardson p = {rich[0]}, {rich[1]}"),
            ("convergence_box.png", boxes, "box_errors", "box length L (bohr)",
             f"{box_ppb} points per bohr, reference: L = {boxes[-1]} bohr")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, col, n_e in zip(axes, (0, 1), (1, 2)):
            for label, res in results.items():
                err = np.abs(np.array(res[key])[:, col])
                xs_plot = np.array(xs, dtype=float)
                keep = np.isfinite(err) & (err > 0)
                ax.semilogy(xs_plot[keep], err[keep], "o-", ms=3, label=label)
            ax.axhline(n_e * THRESHOLD, color="k", ls="--", lw=1, label=f"{n_e} x 0.8 mHa")
            ax.set_xlabel(xlabel)
            ax.set_title(f"|E{n_e} - E{n_e}(ref)|, {title}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("error (Ha)")
        for ax in axes:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, name), dpi=120)
        plt.close(fig)

    with open(os.path.join(args.out, "convergence1d.json"), "w") as f:
        json.dump(dict(threshold=THRESHOLD, ppbs=ppbs, boxes=boxes, richardson=rich, ref_box=L,
                       results=results, summary=summary, default_errors=default_errors,
                       molecule_E1_grid_noise=noise),
                  f, indent=1, default=float)
    print(f"wrote {args.out}/convergence_points_per_bohr.png, convergence_box.png, convergence1d.json "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
