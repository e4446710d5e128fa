"""Benchmark: the demo campaign on 1 rank vs N ranks (CPU), same per-task results.

    python benchmarks/campaign_scaling.py [--campaign jobs/demo.toml] [--ranks 2]

Runs `qpnn-hpc run` twice in this process's environment (1 rank, then a real
`mpiexec -n N`), prints both wall times, the ratio (N ranks / 1 rank; the target for
2 ranks is <= 0.6) and checks every task's numbers are identical.
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
from qpnn_hpc import results  # noqa: E402


def run(campaign, out, ranks):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
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
    with tempfile.TemporaryDirectory() as d:
        t1 = run(a.campaign, Path(d) / "one.h5", 1)
        tn = run(a.campaign, Path(d) / "n.h5", a.ranks)
        x, y = results.read_table(Path(d) / "one.h5"), results.read_table(Path(d) / "n.h5")
        same = all(np.array_equal(x[k], y[k], equal_nan=True) for k in ("energy", "eps", "loss_curve", "potential"))
    print(f"campaign {a.campaign}: {len(x['id'])} tasks on {os.cpu_count()} cores")
    print(f"  1 rank : {t1:8.1f} s")
    print(f"  {a.ranks} ranks: {tn:8.1f} s")
    print(f"  ratio {a.ranks} ranks / 1 rank = {tn / t1:.3f} (target <= 0.6 for 2 ranks)")
    print(f"  identical per-task results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
