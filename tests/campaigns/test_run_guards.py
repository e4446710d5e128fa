"""What `qpnn-hpc run` does before and around the work: a read-only results file, --device
cuda without a GPU, Ctrl-C / SIGTERM, and rank 1's rows reaching the file while rank 0
computes (the rank-0 writer's receiving thread). Real processes throughout."""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from qpnn_hpc.campaigns import lock, store

from tests.campaigns.held import ONE, SMALL, Held, campaign
from tests.conftest import ROOT, qpnn

CAPS_OVER_PERMISSIONS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
PR_CAPBSET_DROP = 24


def _drop_caps():
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in CAPS_OVER_PERMISSIONS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def unprivileged_run(*args):
    """`qpnn-hpc ARGS` in a process that obeys file permissions. Tests run as root here, and
    root ignores permission bits: the child is root without the capabilities that override
    them (dropped from its bounding set before exec; the interpreter under /root stays
    reachable, unlike for `nobody`)."""
    preexec = None
    if os.geteuid() == 0:
        probe = subprocess.run(["true"], preexec_fn=_drop_caps, capture_output=True)
        if probe.returncode != 0:
            pytest.skip("root, and the capabilities that override file permissions cannot be dropped here")
        preexec = _drop_caps
    return subprocess.run([sys.executable, "-m", "qpnn_hpc.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, preexec_fn=preexec)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished results file of the one-task campaign."""
    d = tmp_path_factory.mktemp("finished")
    camp = campaign(d, ONE)
    qpnn("run", camp, "--out", d / "r.h5", "--quiet")
    return camp, d / "r.h5"


@pytest.mark.parametrize("case", ["finished, read-only file", "finished, read-only folder",
                                  "pending, read-only file", "pending, read-only folder"])
def test_read_only_results_file(tmp_path, finished, case):
    """Nothing to run: the counts and exit 0, the file not opened for writing (not even in a
    read-only folder). Pending tasks: refused in one line before any work (a read-only file),
    or because the lock cannot be made (a read-only folder)."""
    camp, done = finished
    folder = tmp_path / "d"
    folder.mkdir()
    out = folder / "r.h5"
    shutil.copy(done, out)
    if case.startswith("pending"):
        with h5py.File(out, "r+") as f:
            f["tasks/status"][0] = store.PENDING
    before = out.read_bytes()
    os.chmod(out, 0o444)
    if case.endswith("folder"):
        os.chmod(out, 0o644)
        os.chmod(folder, 0o555)
    try:
        p = unprivileged_run("run", camp, "--out", out)
    finally:
        os.chmod(folder, 0o755)
    assert out.read_bytes() == before and os.listdir(folder) == ["r.h5"]
    if case.startswith("finished"):
        assert p.returncode == 0, p.stderr
        assert "1 tasks, 0 to run" in p.stdout and "'done': 1" in p.stdout
        return
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    if case.endswith("file"):
        assert f"--out: '{out}' is read-only; make it writable (chmod u+w '{out}') to run its 1 pending" in p.stderr
    else:
        assert f"--out: cannot create the lock file '{out}.lock' (Permission denied)" in p.stderr
    assert p.stdout == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
@pytest.mark.parametrize("ranks", [1, 2])
def test_device_cuda_without_a_gpu_writes_nothing(tmp_path, ranks):
    camp = campaign(tmp_path, ONE)
    p = qpnn("run", camp, "--out", tmp_path / "r.h5", "--device", "cuda", ranks=ranks, check=False, timeout=120)
    assert p.returncode == 2 and "--device: cuda requested but no GPU is visible; use --device cpu" in p.stderr
    assert sorted(os.listdir(tmp_path)) == ["small.toml"]


def _done_rows(out, rank=None) -> int:
    try:
        with store.open_file(out) as f:
            status, ranks = f["tasks/status"][:], f["tasks/rank"][:]
    except (OSError, KeyError):
        return 0
    return int(((status != store.PENDING) & ((ranks == rank) if rank is not None else True)).sum())


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGINT to mpiexec -n 2"])
def test_interrupt_prints_one_line_and_releases_the_lock(tmp_path, how):
    """Interrupted while rank 0 waits before a unit (after 2 units of its own, or, on 2
    ranks, after rank 1 has written 3 rows): exit 130 and one line naming the rows kept;
    the lock is removed. Under Open MPI's mpiexec a Ctrl-C becomes SIGTERM on every rank, and
    mpiexec no longer forwards the ranks' output nor their exit status: there the lock and
    the rows are checked."""
    camp, out = campaign(tmp_path, SMALL), tmp_path / "r.h5"
    two = how.endswith("-n 2")
    run = Held(tmp_path, ["run", camp, "--out", out, "--writer", "rank0"], ranks=2 if two else 1,
               hold=0 if two else 2)
    try:
        run.wait_held()
        kept = 3 if two else 2
        t0 = time.time()
        while _done_rows(out) < kept:
            assert time.time() - t0 < 120, "rank 1's rows did not arrive"
            time.sleep(0.05)
        run.proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        _, err = run.proc.communicate(timeout=120)
    finally:
        run.kill()
    assert not lock.lock_path(out).exists() and _done_rows(out) == kept
    if two:
        return
    assert run.proc.returncode == 130, err
    line = f"qpnn-hpc run: interrupted; {kept} rows kept in {out}; rerun the same command to resume"
    assert err.strip() == line


def test_rank_1_rows_reach_the_file_while_rank_0_computes(tmp_path):
    """Rank-0 writer, 2 ranks, rank 0 in a long first unit (held until rank 1's 3 rows are
    seen, at most 60 s): each of rank 1's rows is in the file within a second of the end of
    its unit (the receiving thread polls every 0.1 s; measured: about 0.1 s), not at the end
    of rank 0's unit; then every task is done (the numbers equal a 1-process run's:
    test_engine.py::test_two_ranks_give_the_same_numbers_as_one, rank-0 writer)."""
    camp, out = campaign(tmp_path, SMALL), tmp_path / "r.h5"
    run = Held(tmp_path, ["run", camp, "--out", out, "--writer", "rank0"], ranks=2)
    try:
        run.wait_held()
        t0 = time.time()
        while _done_rows(out, rank=1) < 3 and time.time() - t0 < 60:
            time.sleep(0.05)
        seen = _done_rows(out, rank=1)
        rc, stdout, stderr = run.finish()
    finally:
        run.kill()
    assert seen == 3, f"only {seen} of rank 1's 3 rows reached the file while rank 0 computed"
    assert rc == 0, stderr
    t = store.read_table(out)
    assert (t["status"] == store.DONE).all() and sorted(t["rank"]) == [0, 1, 1, 1]
    ends = run.unit_ends()
    latency = [t["finished"][i] - end for i, (rank, end) in ends.items() if rank == 1]
    assert len(latency) == 3 and 0 <= min(latency) and max(latency) < 1.0, latency
    print("rank 1 row -> file latency (s):", np.round(latency, 3))
