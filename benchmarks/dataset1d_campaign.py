"""Benchmark: seed 002's whole 1D datasets as an MPI campaign, 1 rank vs N ranks.

    python benchmarks/dataset1d_campaign.py [--config jobs/dataset1d.toml] [--ranks 2] [--repeat 1]

Runs ``qpnn-hpc run CONFIG --out TMP.h5`` into fresh files: on 1 rank (plain process),
then under a real ``mpiexec -n N`` (the venv's), --repeat times each, alternating. Prints,
per run, the wall time of the whole command (Python, torch and MPI start-up included) and
the campaign's own solve-and-write time (its "finished in" line), the share of it the
ranks spent in solve_system (the rest: scheduling, messages, writes) with the systems
and solve seconds per rank, the best of each, the ratio N ranks / 1 rank, and checks the
arrays of both runs are identical.
On a shared machine note that Linux's autogroup scheduler gives a session (this script and
all its ranks) one fair share of the CPUs: under outside load N ranks get no more CPU than 1.
One BLAS thread per rank (OMP_NUM_THREADS=1 unless set); the writer is --writer (auto).
"""
import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(config, out, ranks, writer):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "qpnn_hpc.cli", "run", str(config), "--out", str(out), "--writer", writer]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"finished in ([0-9.]+) s", p.stdout)
    head = p.stdout.splitlines()[0] if p.stdout else ""
    return wall, float(m.group(1)) if m else float("nan"), head


def per_rank(out):
    """Systems and summed solve time (s) per rank, from the file's rank and wall_time columns."""
    import h5py
    import numpy as np

    with h5py.File(out) as h:
        rank, wall = h["tasks/rank"][:], h["results/wall_time"][:]
    return {int(r): (int((rank == r).sum()), float(wall[rank == r].sum())) for r in np.unique(rank)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "jobs" / "dataset1d.toml"))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (best is reported)")
    ap.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"])
    args = ap.parse_args()

    import h5py
    import numpy as np

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, h5py mpi={h5py.get_config().mpi}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (1)')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for n in (1, args.ranks):
                out = Path(tmp) / f"r{n}_{rep}.h5"
                wall, solve, head = run(args.config, out, n, args.writer)
                if rep == 0:
                    print(head)
                ranks = per_rank(out)
                busy = sum(t for _, t in ranks.values()) / (n * solve)
                print(f"  {n} rank(s): command {wall:6.1f} s, campaign {solve:6.1f} s, ranks solving "
                      f"{100 * busy:3.0f}% of it; per rank (systems, solve s): "
                      + ", ".join(f"{r}: ({c}, {t:.1f})" for r, (c, t) in ranks.items())
                      + f"  (load average {os.getloadavg()[0]:.2f})", flush=True)
                b = best.get(n, (float("inf"), float("inf")))
                best[n] = (min(b[0], wall), min(b[1], solve))
        one, many = Path(tmp) / "r1_0.h5", Path(tmp) / f"r{args.ranks}_0.h5"
        with h5py.File(one) as a, h5py.File(many) as b:
            for g in ("tasks", "results"):
                for key, d in a[g].items():
                    if key not in ("rank", "finished", "wall_time"):
                        assert np.array_equal(d[...], b[g][key][...]), (g, key)
        print(f"{one.name}: {one.stat().st_size / 1e6:.1f} MB, identical arrays on 1 and {args.ranks} ranks")
    (w1, s1), (wn, sn) = best[1], best[args.ranks]
    print(f"best: 1 rank {w1:.1f} s (campaign {s1:.1f} s); {args.ranks} ranks {wn:.1f} s (campaign {sn:.1f} s); "
          f"ratio {args.ranks} / 1: command {wn / w1:.2f}, campaign {sn / s1:.2f}")


if __name__ == "__main__":
    main()
