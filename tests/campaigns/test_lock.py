"""One writer per results file: the lock ``<out>.lock`` (qpnn_hpc.campaigns.lock), in process
and through real ``qpnn-hpc run`` processes (one of them under a real 2-rank mpiexec)."""
import json
import multiprocessing
import os
import socket
import subprocess
import time

import pytest

from qpnn_hpc.campaigns import lock, shards, store
from qpnn_hpc.config import ConfigError

from tests.campaigns.held import ONE, Held, campaign
from tests.conftest import qpnn


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def write_lock(out, **fields) -> dict:
    info = {"format": lock.FORMAT, "out": str(out), "host": socket.gethostname(), "pid": dead_pid(),
            "started": "2026-01-01T00:00:00+0000", "started_unix": 0.0}
    info.update(fields)
    lock.lock_path(out).write_text(json.dumps(info))
    return info


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch):
    """Runs here are outside any Slurm job (the runs' environment is this one's)."""
    for var in lock.SLURM_VARS:
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------------------ in process

def test_lock_is_taken_refused_while_held_and_released(tmp_path):
    out = tmp_path / "r.h5"
    held = lock.acquire(out)
    info = json.loads(lock.lock_path(out).read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["out"] == str(out)
    with pytest.raises(ConfigError, match=rf"--out: '.*r.h5' is being written by another run \(host "
                                          rf"{socket.gethostname()}, pid {os.getpid()}, since .*; wait for it"):
        lock.acquire(out)
    held.release()
    assert not lock.lock_path(out).exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    lock.acquire(out).release()


@pytest.mark.parametrize("case", ["dead pid", "zombie", "reused pid", "another boot"])
def test_stale_lock_on_this_host_is_taken_over(tmp_path, case):
    """A SIGKILLed holder leaves its lock; here an exited process stays a zombie until its
    parent waits (and in this sandbox orphans are never reaped): a zombie is dead too."""
    out = tmp_path / "r.h5"
    zombie = None
    if case == "dead pid":
        write_lock(out)
    elif case == "zombie":
        zombie = subprocess.Popen(["true"])
        time.sleep(0.3)  # exited, not waited for
        write_lock(out, pid=zombie.pid)
    elif case == "reused pid":  # our own pid, but recorded with another process start
        write_lock(out, pid=os.getpid(), pid_start=1)
    else:
        write_lock(out, pid=os.getpid(), boot_id="not-this-boot")
    try:
        held = lock.acquire(out)
    finally:
        if zombie is not None:
            zombie.wait()
    why = {"dead pid": "is no longer running", "zombie": "has exited (a zombie)",
           "reused pid": "is now another process", "another boot": "restarted since"}[case]
    assert why in held.took_over
    assert json.loads(lock.lock_path(out).read_text())["pid"] == os.getpid()
    held.release()
    assert not lock.lock_path(out).exists()


def test_lock_on_another_host_is_refused_unless_it_is_this_slurm_job(tmp_path, monkeypatch):
    out = tmp_path / "r.h5"
    write_lock(out, host="node-b17", pid=4242, slurm_job_id="9001", slurm_array_job_id="9000",
               slurm_array_task_id="1")
    with pytest.raises(ConfigError) as e:
        lock.acquire(out)
    msg = str(e.value)
    assert "host node-b17, pid 4242" in msg and "Slurm job 9001 (array 9000_1)" in msg
    assert "ssh node-b17 ps -p 4242; squeue -j 9001" in msg and f"delete '{out}.lock'" in msg
    monkeypatch.setenv("SLURM_JOB_ID", "9002")  # another job: refused as well
    with pytest.raises(ConfigError, match="node-b17"):
        lock.acquire(out)
    monkeypatch.setenv("SLURM_JOB_ID", "9001")  # the same job, requeued: its rank 0 is now here
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    held = lock.acquire(out)
    assert "this Slurm job 9001 (restart 0 then, 1 now)" in held.took_over
    assert json.loads(lock.lock_path(out).read_text())["slurm_restart_count"] == "1"
    held.release()


def test_without_hard_links_the_lock_is_made_with_o_excl(tmp_path, monkeypatch):
    """File systems without hard links (some FUSE and SMB mounts): O_CREAT|O_EXCL instead."""
    import errno

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(lock.os, "link", no_links)
    out = tmp_path / "r.h5"
    write_lock(out)
    held = lock.acquire(out)  # a takeover: the guard is made the same way
    assert "is no longer running" in held.took_over
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
        lock.acquire(out)
    held.release()
    lock.acquire(out).release()
    assert os.listdir(tmp_path) == []


def test_a_takeover_guard_left_behind_is_named_not_removed(tmp_path):
    out = tmp_path / "r.h5"
    write_lock(out)
    guard = tmp_path / "r.h5.lock.takeover"
    guard.write_text(json.dumps({"host": "h", "pid": 1, "started": "then"}))
    old = time.time() - 2 * lock.GUARD_STALE_S
    os.utime(guard, (old, old))
    with pytest.raises(ConfigError, match=r"r.h5.lock.takeover' is left from a lock takeover .*delete it"):
        lock.acquire(out)
    assert guard.exists()


def _contend(out, barrier, results):
    barrier.wait()
    try:
        held = lock.acquire(out)
        results.put(("held", os.getpid()))
        time.sleep(0.5)  # hold while the others try
        held.release()
    except ConfigError as e:
        results.put(("refused", str(e)))


@pytest.mark.parametrize("stale", [False, True])
def test_exactly_one_of_many_simultaneous_takers_gets_the_lock(tmp_path, stale):
    """8 processes released together (a barrier) on a missing lock, or on a stale one (a
    dead pid): one holds it, 7 are refused naming it; repeated 3 times."""
    ctx = multiprocessing.get_context("fork")
    out = tmp_path / "r.h5"
    for _ in range(3):
        if stale:
            write_lock(out)
        barrier, results = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(out, barrier, results)) for _ in range(8)]
        for p in procs:
            p.start()
        got = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        winners = [pid for what, pid in got if what == "held"]
        assert len(winners) == 1, got
        refusals = [m for what, m in got if what == "refused"]
        assert all(f"pid {winners[0]}," in m for m in refusals), refusals
        assert not lock.lock_path(out).exists() and not list(tmp_path.glob("*.tmp"))


def test_a_lock_never_looks_like_a_results_file(tmp_path):
    """Shard files each have their own lock, and the merge glob of a job array does not
    take the locks; a lock given as a results file is refused in one line."""
    out = tmp_path / "results.h5"
    paths = [shards.shard_path(out, k, 2) for k in range(2)]
    for p in paths:
        p.write_bytes(b"")
        write_lock(p)
    assert sorted(tmp_path.glob(shards.shard_path(out, "*", 2).name)) == paths
    assert {lock.lock_path(p).name for p in paths} == {"results.shard0-of-2.h5.lock", "results.shard1-of-2.h5.lock"}
    with pytest.raises(ConfigError, match="not a readable HDF5 file"):
        store.read_attrs(lock.lock_path(paths[0]))


# ------------------------------------------------------------------------------ real runs

def test_second_run_is_refused_naming_the_holder_and_no_task_runs_twice(tmp_path):
    """A 2-rank run holds the lock (rank 0's Python pid); a second run on the same file exits
    2 with one line naming it; `status` reads the file meanwhile; the first run then finishes
    every task, with both ranks."""
    camp, out = campaign(tmp_path), tmp_path / "r.h5"
    first = Held(tmp_path, ["run", camp, "--out", out, "--writer", "rank0"], ranks=2)
    try:
        pid = first.wait_held()
        info = json.loads(lock.lock_path(out).read_text())
        argv = open(f"/proc/{pid}/cmdline").read().split("\0")
        assert info["pid"] == pid and "python" in argv[0] and argv[1].endswith("held_run.py")  # not mpiexec
        second = qpnn("run", camp, "--out", out, check=False)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "is being written by another run" in lines[0], second.stderr
        assert f"host {socket.gethostname()}, pid {pid}, since {info['started']}" in lines[0]
        assert "wait for it to finish" in lines[0] and second.stdout == ""
        status = qpnn("status", out).stdout
        assert "4 tasks" in status and f"being written by: host {socket.gethostname()}, pid {pid}" in status
        rc, stdout, stderr = first.finish()
    finally:
        first.kill()
    assert rc == 0, stderr
    t = store.read_table(out)
    assert (t["status"] == store.DONE).all() and set(t["rank"]) == {0, 1}
    assert stdout.count("4 tasks, 4 to run") == 1
    assert not lock.lock_path(out).exists()


def test_two_runs_started_at_once_on_a_missing_file(tmp_path):
    """Both start together (twice): one creates the file and runs, the other is refused in
    one line, never a FileNotFoundError on the temporary file."""
    camp = campaign(tmp_path, ONE)
    for attempt in range(2):
        out = tmp_path / f"r{attempt}.h5"
        runs = [Held(tmp_path, ["run", camp, "--out", out, "--quiet"], tag=f"go{attempt}{k}")
                for k in range(2)]
        try:
            t0 = time.time()
            while all(r.proc.poll() is None for r in runs):
                assert time.time() - t0 < 120, "neither run was refused"
                time.sleep(0.05)
            loser = next(r for r in runs if r.proc.poll() is not None)
            winner = next(r for r in runs if r is not loser)
            rc, _, err = loser.finish()
            assert rc == 2 and len(err.strip().splitlines()) == 1, err
            assert "is being written by another run" in err and "FileNotFoundError" not in err
            rc, _, err = winner.finish()
            assert rc == 0, err
        finally:
            for r in runs:
                r.kill()
        assert (store.read_table(out)["status"] == store.DONE).all()
        assert sorted(p.name for p in tmp_path.glob(f"r{attempt}.h5*")) == [f"r{attempt}.h5"]


def test_stale_locks_are_taken_over_by_a_real_run(tmp_path, monkeypatch):
    """A lock of a dead pid on this host, and one from another host of this Slurm job (set in
    the run's environment), are taken over; one from another host of another job is refused."""
    camp = campaign(tmp_path, ONE)
    out = tmp_path / "a.h5"
    info = write_lock(out)
    p = qpnn("run", camp, "--out", out)
    assert f"took over the stale lock {out}.lock (host {info['host']}, pid {info['pid']}" in p.stdout
    assert f"pid {info['pid']} is no longer running" in p.stdout and not lock.lock_path(out).exists()

    out = tmp_path / "b.h5"
    write_lock(out, host="node-b17", pid=4242, slurm_job_id="777")
    monkeypatch.setenv("SLURM_JOB_ID", "778")
    p = qpnn("run", camp, "--out", out, check=False)
    assert p.returncode == 2 and "host node-b17, pid 4242" in p.stderr and "squeue -j 777" in p.stderr
    assert not out.exists() and lock.lock_path(out).exists()
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    p = qpnn("run", camp, "--out", out)
    assert "took over the stale lock" in p.stdout and "this Slurm job 777" in p.stdout
    assert (store.read_table(out)["status"] == store.DONE).all() and not lock.lock_path(out).exists()
