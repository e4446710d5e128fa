"""Ne's tail: the learned U - v_eff of an atoms campaign, and v_eff regrafted at several r_match.

    python benchmarks/ne_tail.py [--results results/atoms.h5]

1. From a results file of jobs/atoms.toml (if given and present): per Ne gauge, the median
   and range over trials of U - v_eff (mHa) at radii from 0.2 to 9.9 bohr. Measured
   (2026-11-30, C2-grafted table, r0 = 2, ionisation / energy gauge): -2.1 / -2.4 mHa at 1.3 bohr,
   +7.4 / +8.7 at 1.4 (the corner where v_eff's curvature changes at the switch), 0 at 2, then
   +1.8 .. +4.4 over [3, 9.9]: the +2 .. +3 mHa of Ne's energies. Before (blended table, r0 = 3):
   -7 mHa at 2.5 bohr, 0 at 3, a flat -2.7 over [5, 9.9], from the blend's 0.1 Ha well at 2.4.
2. The shipped table's raw Gaussian-basis columns (density_raw, drho_raw, lap_rho_raw)
   regrafted by `qpnn-hpc density`'s make_table (the C2 graft of qpnn_hpc/atoms/tail.py) at
   several r_match: a1, a2, v_eff at 2, 3 and 5 bohr, the jumps of v_eff's slope and curvature
   at the switch, and the local minima of v_eff on [0.6, 9] bohr (r, how far v_eff falls into
   each from its maximum before it, mHa). Measured: no minimum for any r_match in [0.9, 2.0]
   (the blends of before, windows from [0.7, 1.3] to [1, 5] bohr, all left 0.1-0.3 Ha wells);
   v_eff(3) = -0.220 .. -0.209 Ha for r_match 1.2 .. 1.4 (the shipped 1.3: -0.220); the slope is
   continuous at 1.06, 1.32 and 1.8 bohr, where the curvature jumps by -8.8, +5.0 and -3.5
   Ha/bohr^2 (at the shipped 1.3: slope -0.12, curvature +5.5).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qpnn_hpc.atoms.density_verb import DensityConfig  # noqa: E402
from qpnn_hpc.atoms.importer import make_table  # noqa: E402

RADII = (0.2, 0.5, 1.0, 1.3, 1.4, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 9.9)
MATCHES = (0.9, 1.0, 1.06, 1.1, 1.13, 1.2, 1.3, 1.32, 1.4, 1.5, 1.6, 1.8, 2.0)


def jumps(x, v, r_match):
    """(slope, curvature) jumps of v at the switch: one-sided second-order differences of the
    raw side (left) and the tail side (right) at the grid point r_match (Ha/bohr, Ha/bohr^2)."""
    j, h = int(np.argmin(abs(x - r_match))), float(x[1] - x[0])
    d_l = (3 * v[j] - 4 * v[j - 1] + v[j - 2]) / (2 * h)
    d_r = (-3 * v[j] + 4 * v[j + 1] - v[j + 2]) / (2 * h)
    c_l = (2 * v[j] - 5 * v[j - 1] + 4 * v[j - 2] - v[j - 3]) / h ** 2
    c_r = (2 * v[j] - 5 * v[j + 1] + 4 * v[j + 2] - v[j + 3]) / h ** 2
    return d_r - d_l, c_r - c_l


def learned(path: Path):
    import h5py
    from qpnn_hpc.campaigns.store import DONE
    with h5py.File(path, "r") as f:
        spec = [json.loads(s) for s in f["tasks/spec"][:]]
        done = f["tasks/status"][:] == DONE
        for gauge in ("ionisation", "energy"):
            idx = [i for i, s in enumerate(spec) if done[i] and s["system"].get("file", "").endswith(f"ne_{gauge}.npz")]
            if not idx:
                continue
            grid = f["results/grid"][idx[0]]
            d = 1e3 * (f["results/potential"][idx] - f["results/potential_true"][idx])
            print(f"Ne {gauge}, {len(idx)} trials: U - v_eff (mHa), median [min, max]")
            for r in RADII:
                j = int(np.argmin(abs(grid - r)))
                print(f"  r = {r:4}: {np.median(d[:, j]):+7.2f} [{d[:, j].min():+7.2f}, {d[:, j].max():+7.2f}]")


def minima(x, v):
    s = (x > 0.6) & (x < 9.0)
    xs, vs = x[s], v[s]
    i = np.where((vs[1:-1] < vs[:-2]) & (vs[1:-1] <= vs[2:]))[0] + 1
    return [(round(float(xs[j]), 2), round(1e3 * float(vs[:j].max() - vs[j]), 1)) for j in i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "results" / "atoms.h5"))
    a = ap.parse_args()
    if Path(a.results).exists():
        learned(Path(a.results))
    t = np.load(ROOT / "qpnn_hpc" / "data" / "ne_ionisation.npz")
    x = t["x"]
    print(f"v_eff local minima on [0.6, 9] bohr (r, fall from the maximum before it in mHa); shipped: "
          f"{minima(x, t['potential'])}")
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "ne_raw.npz"
        m = x > 0
        np.savez(raw, r=x[m], n=t["density_raw"][m], dn=t["drho_raw"][m], lap=t["lap_rho_raw"][m])
        for r_match in MATCHES:
            res = make_table(DensityConfig(input=str(raw), out=str(Path(d) / "g.npz"), electrons=10, charge=10,
                                           ip=float(t["ip"]), r_match=r_match, plot=""))
            g = np.load(res["table"])
            info = json.loads(str(g["meta"]))["graft"]
            at = " ".join(f"v({r:g}) = {np.interp(r, g['x'], g['potential']):+.4f}" for r in (2.0, 3.0, 5.0))
            dv, d2v = jumps(g["x"], g["potential"], info["r_match"])
            print(f"  r_match {r_match:.2f}: a1 {info['a1']:+.3f} a2 {info['a2']:+.3f}; {at}; jumps of v' {dv:+.3f}, "
                  f"v'' {d2v:+.2f}; minima {minima(g['x'], g['potential'])}")


if __name__ == "__main__":
    main()
