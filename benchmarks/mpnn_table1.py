"""Seed 001 Table I: hydrogen 1s and the 1D HO 2nd excited state, QPNN vs QPNN+MS vs MPNN.

    python benchmarks/mpnn_table1.py [--ranks 2] [--out results/mpnn_table1.h5] [--campaign jobs/mpnn_table1.toml]

Runs (or resumes) the campaign jobs/mpnn_table1.toml (10 trials per system and method)
under `mpiexec -n RANKS`, then prints mean and std over the trials of eps (eq. 9) and of
the energy (eq. 10 for QPNN, eq. 8 otherwise) beside the paper's values.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qpnn_hpc.inverse import report  # noqa: E402
from qpnn_hpc.campaigns import store as results

PAPER = {  # seed 001, Table I: (eps, E)
    ("hydrogen", "qpnn"): (0.157, -0.486), ("hydrogen", "qpnn_ms"): (0.383, -0.534),
    ("hydrogen", "mpnn"): (0.157, -0.493),
    ("harmonic_oscillator", "qpnn"): (0.039, 2.474), ("harmonic_oscillator", "qpnn_ms"): (0.016, 2.519),
    ("harmonic_oscillator", "mpnn"): (0.006, 2.506),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaign", default=str(ROOT / "jobs" / "mpnn_table1.toml"))
    ap.add_argument("--out", default=str(ROOT / "results" / "mpnn_table1.h5"))
    ap.add_argument("--ranks", type=int, default=2)
    a = ap.parse_args()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "qpnn_hpc.cli", "run", a.campaign, "--out", a.out, "--batch", "1"]
    if a.ranks > 1:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        cmd = [mpiexec, "-n", str(a.ranks), *cmd]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    t = results.read_table(a.out)
    print(f"\nSeed 001 Table I from {a.out} (mean +- std over trials; paper values in brackets)")
    print(f"{'system':20s} {'method':8s} {'n':>3s} {'eps':>17s} {'[paper]':>8s} {'E (Ha)':>20s} "
          f"{'[paper]':>8s} {'|E-Eex| mHa':>12s}")
    for g in report.groups(t):
        i = g["rows"][0]
        s = report.summary(t, g["rows"])
        pe, pE = PAPER.get((t["system"][i], t["method"][i]), (np.nan, np.nan))
        print(f"{t['system'][i]:20s} {t['method'][i]:8s} {s['done']:3d} {s['eps_mean']:8.4f}+-{s['eps_std']:<7.4f} "
              f"{pe:8.3f} {s['E_mean']:10.5f}+-{s['E_std']:<8.5f} {pE:8.3f} {abs(s['dE_mHa']):12.2f}")


if __name__ == "__main__":
    main()
