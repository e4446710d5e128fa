"""Two-electron ground state: qpnn_hpc.exact1d.solver vs iDEA, and the datasets' wall time.

    python benchmarks/solver1d_vs_idea.py                 # N = 169, as in seed 002
    python benchmarks/solver1d_vs_idea.py --points 101 --skip-datasets

One singlet solve of the 1D hydrogen model (Z = 1, alpha = 1, x in [-7, 7], 13-point
stencil, softened interaction) with ours (every eigensolver; cold = first call, which
also builds the cached kinetic matrix, and warm = best of --repeat) and with
``iDEA.methods.interacting.solve`` (full N^2 space, ARPACK), then the serial wall time
of writing both datasets (atoms, molecules) to a temporary directory.
Prints times, the ratio iDEA / ours (warm and cold) and the energy difference.
BLAS runs on one thread unless OMP_NUM_THREADS / OPENBLAS_NUM_THREADS are set.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import time

# One BLAS thread unless told otherwise (set before numpy is imported): the dense N x N
# products of the solver are too small to gain from threads, and on a busy 2-core machine
# threaded OpenBLAS made our solve 5-10x slower. iDEA's sparse ARPACK solve is unaffected.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from qpnn_hpc.exact1d import dataset as dataset1d  # noqa: E402
from qpnn_hpc.exact1d import solver as solver1d


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=169, help="grid points on [-7, 7] (default 169)")
    ap.add_argument("--stencil", type=int, default=13)
    ap.add_argument("--repeat", type=int, default=5, help="warm repeats of our solve (best is reported)")
    ap.add_argument("--skip-idea", action="store_true", help="do not run iDEA (minutes at N = 169)")
    ap.add_argument("--skip-datasets", action="store_true", help="do not time the datasets")
    args = ap.parse_args(argv)

    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    x = np.linspace(-7.0, 7.0, args.points)
    V = solver1d.softened_atom_potential(x, 1.0, 1.0)
    n = args.points
    print(f"two electrons, N = {n} points (dx = {x[1] - x[0]:.5f} bohr), {args.stencil}-point stencil; "
          f"symmetric subspace M = {n * (n + 1) // 2}, full space N^2 = {n * n}")

    ours = {}
    for method in ("lobpcg", "eigsh", "shift-invert"):
        solver1d._symmetric_kinetic.cache_clear()
        cold_state, cold = timed(solver1d.solve_two_electrons, x, V, args.stencil, method=method)
        warm = min(timed(solver1d.solve_two_electrons, x, V, args.stencil, method=method)[1]
                   for _ in range(args.repeat))
        ours[method] = (cold_state, cold, warm)
        print(f"  ours [{method:12s}] E2 = {cold_state.E:.13f} Ha  cold {cold:8.4f} s  "
              f"warm {warm:8.4f} s  residual {cold_state.residual:.1e}")
    best = min(ours, key=lambda m: ours[m][2])
    state, cold, warm = ours[best]
    print(f"fastest: {best}")

    if not args.skip_idea:
        import iDEA

        system = iDEA.system.System(x, V, iDEA.interactions.softened_interaction(x), "ud",
                                    stencil=args.stencil)
        with contextlib.redirect_stdout(io.StringIO()):
            ref, t_idea = timed(iDEA.methods.interacting.solve, system, k=0)
            n_idea = iDEA.observables.density(system, state=ref)
        print(f"  iDEA  interacting.solve  E2 = {ref.energy:.13f} Ha  {t_idea:8.2f} s")
        print(f"speed-up iDEA / ours ({best}): warm {t_idea / warm:.0f}x, cold {t_idea / cold:.0f}x")
        print(f"|E2(ours) - E2(iDEA)| = {abs(state.E - ref.energy):.2e} Ha, "
              f"max |n2(ours) - n2(iDEA)| = {np.max(np.abs(state.n - n_idea)):.2e} / bohr")

    if not args.skip_datasets:
        total = 0.0
        for kind in dataset1d.KINDS:
            specs = [s for split in dataset1d.SPLITS for s in dataset1d.dataset_specs(kind, split)]
            _, t = timed(lambda: [dataset1d.solve_system(s) for s in specs])
            total += t
            print(f"dataset {kind:9s}: {len(specs):3d} systems, {t:6.1f} s ({t / len(specs) * 1e3:.0f} ms per system)")
        print(f"both datasets, serial solves: {total:.1f} s")


if __name__ == "__main__":
    main()
