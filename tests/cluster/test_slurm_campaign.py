"""`qpnn-hpc submit` on a real local Slurm (the `slurm` fixture): one MPI job of 2 ranks
over srun, a job array of shards merged with `qpnn-hpc merge`, and a running job
requeued twice (the preemption signal, then `scontrol requeue`) that resumes its HDF5
file with nothing lost or repeated; and slurm/campaign-cpu.sbatch requeueing itself on
its signal.

    .venv-cluster/bin/python -m pytest -m cluster tests/cluster/test_slurm_campaign.py

Every wait has a time-out (a job still there at its time-out is cancelled). A requeued
job is held by Slurm for about two minutes before it runs again; the requeue tests lift
the hold with `scontrol update JobId=... StartTime=now`, a few seconds after the requeue
(CREDENTIAL_REVOKE_S: sooner, slurmd may refuse the relaunch and the job ends FAILED).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from qpnn_hpc.campaigns import store as results

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.toml"
JOB_TIMEOUT_S = 180
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not results.has_parallel_hdf5(), reason="h5py.get_config().mpi is False: run "
                       ".ci/cluster-env.sh and use .venv-cluster/bin/python"),
]


@pytest.fixture(scope="module", autouse=True)
def two_cpus(slurm):
    """The jobs here need 2 CPUs on the node; fail at once rather than wait for a job that
    can never start (slurm-up.sh counts CPUs with nproc, which obeys OMP_NUM_THREADS)."""
    r = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%c"], capture_output=True, text=True, timeout=30)
    cpus = max((int(c.rstrip("+")) for c in r.stdout.split() if c.rstrip("+").isdigit()), default=0)
    if cpus < 2:
        pytest.fail(f"the Slurm node has {cpus} CPU(s), these tests need 2 (was Slurm started with "
                    "OMP_NUM_THREADS=1 in the environment? nproc then reports 1)", pytrace=False)


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1")


def qpnn(*args, check: bool = True, timeout: float = 120):
    p = subprocess.run([sys.executable, "-m", "qpnn_hpc.cli", *map(str, args)], capture_output=True, text=True,
                       env=_env(), cwd=REPO, timeout=timeout)
    if check:
        assert p.returncode == 0, f"qpnn-hpc {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def _submit(campaign, out: Path, *extra) -> list[str]:
    """`qpnn-hpc submit` on partition debug; the job ids as recorded in <out>.jobs.json."""
    qpnn("submit", campaign, "--out", out, "--partition", "debug", "--time", "10", *extra)
    subs = json.loads(Path(f"{out}.jobs.json").read_text())["submissions"]
    return [j["id"] for j in subs[-1]["jobs"]]


def _job(job_id: str) -> dict:
    r = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)


def _cancel_and_fail(job_id: str, why: str, folder: Path | None = None):
    subprocess.run(["scancel", job_id.split("_")[0]], timeout=30)
    logs = ""
    if folder is not None:
        files = sorted(folder.rglob("*_0_log.*")) + sorted(folder.glob("*.out"))
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in files)
    pytest.fail(f"Slurm job {job_id}: {why}\n{logs}")


def _wait_state(job_id: str, states: tuple[str, ...], timeout: float = JOB_TIMEOUT_S, folder=None) -> dict:
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = _job(job_id)
        if info.get("JobState") in states:
            return info
        if info.get("JobState") in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            _cancel_and_fail(job_id, f"ended {info['JobState']}", folder)
        time.sleep(0.5)
    _cancel_and_fail(job_id, f"not {'/'.join(states)} after {timeout}s (state {info.get('JobState')})", folder)


def _wait_done(job_id: str, folder: Path) -> None:
    _wait_state(job_id, ("COMPLETED",), folder=folder)


def _finished_rows(out: Path) -> int:
    try:
        with h5py.File(out, "r") as f:
            return int((f["tasks/status"][:] != results.PENDING).sum())
    except (OSError, KeyError):
        return 0


def _wait_rows(out: Path, at_least: int, job_id: str, folder: Path, timeout: float = JOB_TIMEOUT_S) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _finished_rows(out)
        if n >= at_least:
            return n
        if _job(job_id).get("JobState") not in ("PENDING", "RUNNING", "CONFIGURING"):
            _cancel_and_fail(job_id, f"ended before {at_least} rows were finished ({n})", folder)
        time.sleep(0.2)
    _cancel_and_fail(job_id, f"fewer than {at_least} rows finished after {timeout}s", folder)


def _job_processes(job_id: str) -> list[int]:
    """Live processes of a job (SLURM_JOB_ID in their environment; zombies do not count)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            if f"SLURM_JOB_ID={job_id}".encode() in proc.joinpath("environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return pids


def _wait_no_processes(job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (pids := _job_processes(job_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pids, f"processes of job {job_id} still alive {timeout}s after its requeue: {pids}"


def _pending_per_run(log: Path) -> list[int]:
    """Pending task count printed by rank 0 at the start of each run of a job (one log, appended)."""
    return [int(n) for n in re.findall(r"\[qpnn-hpc\] .+? \(\w+\): \d+ tasks, (\d+) to run", log.read_text())]


def _slow_campaign(tmp_path: Path) -> Path:
    """tiny, longer: 60 tasks, a second or more each, so that a quiet machine does not finish
    the campaign between two interruptions."""
    camp = tmp_path / "slow.toml"
    camp.write_text(TINY.read_text().replace("trials = 2", "trials = 10").replace("epochs = 40", "epochs = 600"))
    return camp


# Slurm revokes a killed job's credential with a resolution of one second, and slurmd refuses
# a launch whose credential is not newer ("Killing non-startable batch JobId=97: Job
# credential revoked"; the job then ends FAILED). Slurm's own requeue hold (about two
# minutes) is there for this; a test that lifts the hold waits this long after the requeue.
CREDENTIAL_REVOKE_S = 2.5


def _interrupt(job: str, out: Path, folder: Path, interrupt, snapshots: list, while_held=None) -> None:
    """Once 3 more rows are done: ``interrupt()`` (which must requeue the job), wait until the
    job is pending again with its processes gone, record the file, lift Slurm's requeue hold
    (no sooner than CREDENTIAL_REVOKE_S after the requeue)."""
    _wait_rows(out, (snapshots[-1][0].sum() if snapshots else 0) + 3, job, folder)
    interrupt()
    info = _wait_state(job, ("PENDING",), timeout=60, folder=folder)  # requeued and held
    requeued = time.monotonic()
    assert int(info.get("Restarts", 0)) == len(snapshots) + 1
    _wait_no_processes(job)
    t = results.read_table(out)  # the job's processes are gone: the file is the checkpoint
    finished = t["status"] != results.PENDING
    assert finished.sum() < len(finished), "the campaign finished before the requeue; make it longer"
    snapshots.append((finished, t["finished"].copy()))
    if while_held is not None:
        while_held()
    time.sleep(max(0.0, requeued + CREDENTIAL_REVOKE_S - time.monotonic()))
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)


def _check_resumed(out: Path, log: Path, snapshots: list) -> list[int]:
    """Nothing lost (all done), nothing repeated (rows done before an interruption kept their
    finish time; each run took exactly the rows not yet done)."""
    final = results.read_table(out)
    n = len(final["status"])
    assert (final["status"] == results.DONE).all()
    for finished, when in snapshots:
        np.testing.assert_array_equal(final["finished"][finished], when[finished])
    pending = _pending_per_run(log)
    assert pending == [n] + [n - int(f.sum()) for f, _ in snapshots], pending
    return pending


@pytest.fixture(scope="module")
def mpi_run(slurm, tmp_path_factory):
    """jobs/tiny.toml as one job: 1 node x 2 MPI ranks over srun --mpi=pmix."""
    d = tmp_path_factory.mktemp("mpi")
    out = d / "tiny.h5"
    t0 = time.monotonic()
    (job,) = _submit(TINY, out, "--nodes", "1", "--ntasks-per-node", "2")
    _wait_done(job, d / "tiny.h5.submitit")
    return {"out": out, "job": job, "folder": d / "tiny.h5.submitit", "seconds": time.monotonic() - t0}


def test_mpi_job_over_srun(mpi_run):
    out, job, folder = mpi_run["out"], mpi_run["job"], mpi_run["folder"]
    t = results.read_table(out)
    assert (t["status"] == results.DONE).all() and len(t["status"]) == 12
    assert set(t["rank"]) == {0, 1}  # two MPI ranks shared the work
    assert _pending_per_run(folder / job / f"{job}_0_log.out") == [12]  # one run, every task once
    log = (folder / job / f"{job}_0_log.out").read_text()
    assert "2 rank(s), parallel HDF5" in log
    # the resources (#SBATCH lines) of the script submitit wrote are those --dry-run prints;
    # only the signal (to the batch shell, which requeues), the log and submitit's wckey differ
    script = (folder / job / f"{job}_submission.sh").read_text()
    assert "#SBATCH --ntasks-per-node=2" in script and "--mpi=pmix" in script and "#SBATCH --requeue" in script
    dry = qpnn("submit", TINY, "--out", out, "--partition", "debug", "--time", "10", "--nodes", "1",
               "--ntasks-per-node", "2", "--dry-run").stdout

    def resources(text):
        return {line for line in text.splitlines() if line.startswith("#SBATCH")
                and not re.match(r"#SBATCH --(signal|output|error|wckey)=", line)}
    assert resources(dry) == resources(script)
    # status shows the Slurm state (no accounting here: squeue) and the file's counts
    s = qpnn("status", out).stdout
    assert re.search(rf"job {job}: COMPLETED \[(squeue|sacct)\]", s), s
    assert "12 done" in s
    print(f"MPI job {job}: submit to completed in {mpi_run['seconds']:.1f} s")


def test_job_array_of_shards_and_merge(mpi_run, tmp_path):
    out = tmp_path / "tiny.h5"
    t0 = time.monotonic()
    ids = _submit(TINY, out, "--array", "2", "--ntasks-per-node", "1")
    assert len(ids) == 2 and all(re.fullmatch(r"\d+_[01]", i) for i in ids)
    s = qpnn("status", out).stdout  # before the merge: the jobs and their shard files
    assert all(f"job {i}:" in s for i in ids) and "qpnn-hpc merge" in s, s
    for i in ids:
        _wait_done(i, tmp_path / "tiny.h5.submitit")
    shards = sorted(tmp_path.glob("tiny.shard*-of-2.h5"))
    assert len(shards) == 2
    done = [results.read_table(p)["status"] == results.DONE for p in shards]
    assert not (done[0] & done[1]).any() and (done[0] | done[1]).all()  # each task in one shard
    m = qpnn("merge", *shards, "--out", out)
    assert "12 done" in m.stdout
    merged, ref = results.read_table(out), results.read_table(mpi_run["out"])
    assert (merged["status"] == results.DONE).all()
    for key in ("energy", "eps", "potential", "loss_curve"):  # same numbers as the MPI job
        np.testing.assert_array_equal(merged[key], ref[key])
    print(f"array {ids}: submit to merged in {time.monotonic() - t0:.1f} s")


def test_dataset_job_array_and_merge_equal_a_one_rank_run(slurm, tmp_path):
    """The solve1d kind on Slurm like trials: a 2-shard job array merged equals, array for
    array, a 1-rank `qpnn-hpc run` of the same campaign file."""
    camp = tmp_path / "ds.toml"
    camp.write_text('kind = "solve1d"\nname = "small"\n[grid]\nbox = 8.0\npoints_per_bohr = 3.0\nstencil = 7\n'
                    '[atoms]\ntrain_points = 3\n[molecules]\ntrain_points = 3\n')
    ref = tmp_path / "ref.h5"
    qpnn("run", camp, "--out", ref, "--quiet")
    out = tmp_path / "ds.h5"
    ids = _submit(camp, out, "--array", "2", "--ntasks-per-node", "1")
    for i in ids:
        _wait_done(i, tmp_path / "ds.h5.submitit")
    shards = sorted(tmp_path.glob("ds.shard*-of-2.h5"))
    assert len(shards) == 2
    assert "18 done" in qpnn("merge", *shards, "--out", out).stdout
    with h5py.File(ref) as a, h5py.File(out) as b:
        for g in ("tasks", "results"):
            for key, d in a[g].items():
                if key not in ("finished", "rank", "wall_time"):
                    np.testing.assert_array_equal(d[...], b[g][key][...], err_msg=f"{g}/{key}")
    assert "solve1d campaign 'small', 18 tasks: 0 pending, 18 done" in qpnn("status", out).stdout


def test_pipeline_stages_chained_with_afterok(slurm, tmp_path):
    """`qpnn-hpc pipeline --submit` on Slurm: a 1D dataset then a functional grid search on it,
    submitted at once, the second job held by --dependency=afterok on the first; both end
    COMPLETED and `status PIPELINE` shows both stages complete."""
    (tmp_path / "ds.toml").write_text('kind = "solve1d"\nname = "mol4"\ndatasets = ["molecules"]\n'
                                      '[molecules]\ntrain_points = 4\n')
    (tmp_path / "fn.toml").write_text(f'kind = "functional"\nname = "fn"\ndataset = "{tmp_path / "d.h5"}"\n'
                                      'systems = ["molecules"]\ninputs = ["V"]\ntargets = ["T"]\n'
                                      '[train]\nepochs = 3\nvalidation = 0.0\nbatch_size = 2\n')
    pipe = tmp_path / "p.toml"
    pipe.write_text(f'name = "p"\n[[stages]]\nname = "dataset"\ncampaign = "{tmp_path / "ds.toml"}"\n'
                    f'out = "{tmp_path / "d.h5"}"\n[[stages]]\nname = "train"\ncampaign = "{tmp_path / "fn.toml"}"\n'
                    f'out = "{tmp_path / "f.h5"}"\nafter = ["dataset"]\n')
    p = qpnn("pipeline", pipe, "--submit", "--partition", "debug", "--time", "10", "--ntasks-per-node", "1")
    ids = re.findall(r"stage \w+: job (\d+)", p.stdout)
    assert len(ids) == 2, p.stdout
    for jid, out in zip(ids, ("d.h5", "f.h5")):
        _wait_done(jid, tmp_path / f"{out}.submitit")
    script = (tmp_path / "f.h5.submitit" / ids[1] / f"{ids[1]}_submission.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{ids[0]}" in script
    s = qpnn("status", pipe).stdout
    assert "stage dataset" in s and "stage train (after dataset)" in s and s.count(": complete") == 2, s


def test_requeued_job_resumes(slurm, tmp_path):
    """Interrupt a running 2-rank `qpnn-hpc submit` job twice: the preemption signal (submitit
    checkpoints and requeues), then an external `scontrol requeue`. Rows done before an
    interruption are never run again; every task ends done exactly once."""
    camp = _slow_campaign(tmp_path)
    out = tmp_path / "slow.h5"
    folder = tmp_path / "slow.h5.submitit"
    t0 = time.monotonic()
    (job,) = _submit(camp, out, "--ntasks-per-node", "2")
    snapshots = []

    def second_submission_refused():  # the held job will resume the file: no second job on it
        p = qpnn("submit", camp, "--out", out, "--partition", "debug", "--ntasks-per-node", "2", check=False)
        assert p.returncode == 2 and f"Slurm job {job} (PENDING" in p.stderr, p.stderr

    # what Slurm sends --signal-delay seconds before the time limit (to the srun tasks)
    _interrupt(job, out, folder, lambda: subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30),
               snapshots, while_held=second_submission_refused)
    _interrupt(job, out, folder, lambda: subprocess.run(["scontrol", "requeue", job], check=True, timeout=30),
               snapshots)
    _wait_done(job, folder)
    log = folder / job / f"{job}_0_log.out"
    pending = _check_resumed(out, log, snapshots)
    assert "preemption/time-limit signal: requeueing" in log.read_text()  # the checkpoint ran on the signal
    print(f"requeued job {job}: runs with {pending} pending; {time.monotonic() - t0:.1f} s in all")


def test_cpu_sbatch_script_requeues_itself(slurm, tmp_path):
    """slurm/campaign-cpu.sbatch: 2 ranks over srun; on USR1 to the batch shell (its
    --signal=B:USR1@120) the script requeues the job, and the rerun resumes the file."""
    camp = _slow_campaign(tmp_path)
    out, log = tmp_path / "slow.h5", tmp_path / "job.out"
    env = dict(_env(), QPNN=f"{sys.executable} -m qpnn_hpc.cli")
    t0 = time.monotonic()
    r = subprocess.run(["sbatch", "--parsable", "--partition=debug", "--ntasks-per-node=2", "--cpus-per-task=1",
                        "--time=10", f"--output={log}", str(REPO / "slurm" / "campaign-cpu.sbatch"),
                        "run", str(camp), "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    snapshots = []
    _interrupt(job, out, tmp_path, lambda: subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True,
                                                          timeout=30), snapshots)
    _wait_done(job, tmp_path)
    pending = _check_resumed(out, log, snapshots)
    text = log.read_text()
    assert "requeueing job" in text and "(restart 1)" in text and "srun exited with status 0" in text, text
    print(f"sbatch script job {job}: runs with {pending} pending; {time.monotonic() - t0:.1f} s in all")


def test_dry_run_script_runs_with_sbatch_and_requeues_itself(slurm, tmp_path):
    """The script `qpnn-hpc submit --dry-run` prints, submitted as is with sbatch: 2 ranks
    over srun run `qpnn-hpc run`; on USR2 to the batch shell (its --signal=B:USR2@...) it
    requeues the job, and the rerun resumes the file (nothing lost or repeated)."""
    camp = _slow_campaign(tmp_path)
    out = tmp_path / "slow.h5"
    text = qpnn("submit", camp, "--out", out, "--partition", "debug", "--time", "10", "--ntasks-per-node", "2",
                "--cpus-per-task", "1", "--dry-run").stdout
    assert "qpnn-hpc run " in text and "submitit" not in text
    (tmp_path / "job.sbatch").write_text(text)
    r = subprocess.run(["sbatch", "--parsable", str(tmp_path / "job.sbatch")], capture_output=True, text=True,
                       env=_env(), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    log = tmp_path / f"slow.h5.{job}.log"
    snapshots = []
    _interrupt(job, out, tmp_path, lambda: subprocess.run(["scancel", "--batch", "--signal=USR2", job], check=True,
                                                          timeout=30), snapshots)
    _wait_done(job, tmp_path)
    _check_resumed(out, log, snapshots)
    text = log.read_text()
    assert "requeueing job" in text and "(restart 1)" in text and "srun exited with status 0" in text, text
