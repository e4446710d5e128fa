"""The cluster stack works end to end: Debian's Open MPI + parallel HDF5 (h5py mpio),
a local Slurm (sbatch, srun --mpi=pmix) and submitit on it.

Run in the cluster venv (.ci/cluster-env.sh):
    .venv-cluster/bin/python -m pytest -m cluster tests/cluster
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _h5py_mpi() -> bool:
    try:
        import h5py
    except ImportError:
        return False
    return bool(h5py.get_config().mpi)


pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not _h5py_mpi(), reason="h5py.get_config().mpi is False: run .ci/cluster-env.sh "
                       "and use .venv-cluster/bin/python (h5py built against Debian's parallel HDF5)"),
]

NRANKS = 2
JOB_TIMEOUT_S = 180

# Writes a (nranks, 4) dataset collectively with the mpio driver, reads it back on every rank.
MPIO_SCRIPT = """
import sys
import numpy as np
import h5py
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
path = sys.argv[1]
with h5py.File(path, "w", driver="mpio", comm=comm) as f:
    dset = f.create_dataset("x", (size, 4), dtype="f8")  # structure: every rank
    with dset.collective:
        dset[rank] = np.arange(4) + 10 * rank
comm.Barrier()
with h5py.File(path, "r", driver="mpio", comm=comm) as f:
    data = f["x"][...]
expected = np.arange(4)[None, :] + 10 * np.arange(size)[:, None]
ok = bool(np.array_equal(data, expected))
print(f"MPIO rank={rank} size={size} ok={ok}", flush=True)
sys.exit(0 if ok else 1)
"""


def _mpio_script(tmp_path: Path) -> Path:
    p = tmp_path / "mpio_rw.py"
    p.write_text(MPIO_SCRIPT)
    return p


def _check_mpio_output(out: str, nranks: int = NRANKS) -> None:
    # regex, not lines: the ranks' prints can interleave in one Slurm output file
    found = sorted(re.findall(r"MPIO rank=(\d+) size=(\d+) ok=(True|False)", out))
    assert found == [(str(r), str(nranks), "True") for r in range(nranks)], out


def _debian_mpiexec() -> str:
    exe = os.environ.get("QPNN_MPIEXEC") or ("/usr/bin/mpiexec" if os.path.exists("/usr/bin/mpiexec") else None)
    exe = exe or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec (apt: openmpi-bin)")
    return exe


def _wait_job(job_id: str, timeout: float = JOB_TIMEOUT_S) -> str:
    """Poll scontrol until the job leaves PENDING/RUNNING/COMPLETING; scancel it on timeout."""
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        r = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
        fields = dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)
        state = fields.get("JobState", "?")
        if r.returncode == 0 and state not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "?"):
            return state
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], timeout=30)
    pytest.fail(f"Slurm job {job_id} not finished after {timeout}s (last state {state})")


def _sbatch(args: list[str], cwd: Path) -> str:
    r = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split(";")[0]


def test_mpiexec_h5py_mpio(tmp_path):
    """(i) Debian's mpiexec, 2 ranks, collective write + read back with driver='mpio'."""
    env = dict(os.environ,
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",  # CI runs as root
               OMPI_MCA_rmaps_base_oversubscribe="1")  # more ranks than cores is fine
    cmd = [_debian_mpiexec(), "-n", str(NRANKS), sys.executable, str(_mpio_script(tmp_path)), str(tmp_path / "x.h5")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    _check_mpio_output(r.stdout)


def test_sbatch_hostname(slurm, tmp_path):
    """(ii-a) the smallest batch job."""
    job = _sbatch(["-o", "hostname-%j.out", "--wrap", "hostname"], cwd=tmp_path)
    assert _wait_job(job) == "COMPLETED"
    out = (tmp_path / f"hostname-{job}.out").read_text().strip()
    assert out == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()


def test_srun_pmix_h5py_mpio(slurm, tmp_path):
    """(ii-b) srun --mpi=pmix, 2 tasks, inside an sbatch job: Slurm starts the MPI ranks."""
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"#SBATCH -n {NRANKS}\n"
        "#SBATCH -o mpio-%j.out\n"
        f"srun --mpi=pmix -n {NRANKS} {sys.executable} {_mpio_script(tmp_path)} {tmp_path / 'srun.h5'}\n"
    )
    job = _sbatch([str(script)], cwd=tmp_path)
    state = _wait_job(job)
    out = (tmp_path / f"mpio-{job}.out").read_text()
    assert state == "COMPLETED", out
    _check_mpio_output(out)


def test_submitit_mpi_ranks(slurm, tmp_path):
    """(iii) submitit on the real Slurm: tasks_per_node=2 with srun --mpi=pmix gives 2 MPI ranks."""
    submitit = pytest.importorskip("submitit")

    def ranks():  # local: cloudpickle ships it by value, no import of this module in the job
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        return comm.Get_rank(), comm.Get_size(), MPI.Get_library_version().splitlines()[0]

    ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")  # never guess the cluster
    ex.update_parameters(nodes=1, tasks_per_node=NRANKS, cpus_per_task=1, timeout_min=5,
                         slurm_srun_args=["--mpi=pmix"])
    job = ex.submit(ranks)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not job.done():  # no accounting here: results() of a cancelled job would hang forever
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"submitit job {job.job_id} not done after {JOB_TIMEOUT_S}s:\n{job.stderr()}")
        time.sleep(1)
    results = job.results()
    assert sorted(r[:2] for r in results) == [(r, NRANKS) for r in range(NRANKS)], results
    assert all("Open MPI" in r[2] for r in results), results
