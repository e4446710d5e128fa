"""Benchmark: the demo campaign on 1 rank vs N ranks (CPU), same per-task results.

    python benchmarks/campaign_scaling.py [--campaign jobs/demo.toml] [--ranks 2]

Runs `qpnn-hpc run` three times: 1 rank with 1 torch thread, 1 rank with the default
threads (all cores), and a real `mpiexec -n N` (cores / N threads per rank); prints the
wall times, the ratios N ranks / 1 rank (the target for 2 ranks is <= 0.6 against the
faster of the two 1-rank runs) and checks every task's numbers are identical.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qpnn_hpc.campaigns import store as results  # noqa: E402


def run(campaign, out, ranks, threads=None):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_osc="^ucx")  # osc: see tests/conftest.mpi_env
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "qpnn_hpc.cli", "run", str(campaign), "--out", str(out), "--quiet"]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaign", default=str(ROOT / "jobs" / "demo.toml"))
    ap.add_argument("--ranks", type=int, default=2)
    a = ap.parse_args()
    keys = ("energy", "eps", "loss_curve", "potential")
    with tempfile.TemporaryDirectory() as d:
        t11 = run(a.campaign, Path(d) / "one1.h5", 1, threads=1)
        t1c = run(a.campaign, Path(d) / "onec.h5", 1)
        tn = run(a.campaign, Path(d) / "n.h5", a.ranks)
        x, z, y = (results.read_table(Path(d) / f) for f in ("one1.h5", "onec.h5", "n.h5"))
        same = all(np.array_equal(x[k], y[k], equal_nan=True) for k in keys)
        same_threads = all(np.allclose(x[k], z[k], rtol=1e-4, atol=1e-6, equal_nan=True) for k in keys)
    print(f"campaign {a.campaign}: {len(x['id'])} tasks on {os.cpu_count()} cores")
    print(f"  1 rank, 1 thread        : {t11:8.1f} s")
    print(f"  1 rank, default threads : {t1c:8.1f} s")
    print(f"  {a.ranks} ranks                 : {tn:8.1f} s")
    base = min(t11, t1c)
    print(f"  ratio {a.ranks} ranks / best 1 rank = {tn / base:.3f} (target <= 0.6 for 2 ranks); "
          f"vs 1 rank default threads = {tn / t1c:.3f}")
    print(f"  identical per-task results, 1 rank (1 thread) vs {a.ranks} ranks: {same}; "
          f"1 vs default threads equal to 1e-4: {same_threads}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
