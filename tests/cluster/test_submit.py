"""`qpnn-hpc submit` without Slurm: the sbatch script submitit writes (pinned by golden
files), the local and debug executors end to end, shards and `qpnn-hpc merge`, and the
job record that `qpnn-hpc status` reads. The real Slurm runs are in
tests/cluster/test_slurm_campaign.py (make test-cluster).

Golden files: QPNN_UPDATE_GOLDEN=1 python -m pytest tests/test_submit.py rewrites them.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from qpnn_hpc.campaigns import files as campaign
from qpnn_hpc.cluster import jobrecord
from qpnn_hpc.campaigns import store as results
from qpnn_hpc.campaigns import shards
from qpnn_hpc.cli import main
from qpnn_hpc.config import ConfigError

from tests.conftest import ROOT, qpnn

TINY = ROOT / "jobs" / "tiny.toml"
GOLDEN = ROOT / "tests" / "golden"

# (golden file, options): a 2-node GPU job, and a CPU-only job array
SCRIPTS = {
    "submit_gpu.sbatch": ["--nodes", "2", "--gpus-per-node", "4", "--cpus-per-task", "8", "--time", "720",
                          "--partition", "gpu", "--account", "myproject", "--mem-gb", "64",
                          "--setup", "module load openmpi/4.1 cuda/12.1",
                          "--setup", "source $HOME/venvs/qpnn/bin/activate"],
    "submit_array_cpu.sbatch": ["--array", "4", "--ntasks-per-node", "2", "--cpus-per-task", "4",
                                "--time", "240", "--partition", "cpu", "--account", "myproject",
                                "--sbatch", "qos=normal", "--signal-delay", "300"],
}


def _normalise(text: str, out_dir: Path) -> str:
    bindir = str(Path(sys.executable).parent)
    return text.replace(bindir, "<VENV_BIN>").replace(str(out_dir), "<OUT_DIR>").replace(str(ROOT), "<REPO>")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_sbatch_script_matches_golden(name, tmp_path, capsys):
    """The exact standalone script --dry-run prints for fixed options: its #SBATCH lines are
    the submitit submission's (the cluster test compares them on a real Slurm and submits
    this script with sbatch), its command `qpnn-hpc run ...` from the --setup environment."""
    assert main(["submit", str(TINY), "--out", str(tmp_path / "results.h5"), *SCRIPTS[name], "--dry-run"]) == 0
    text = _normalise(capsys.readouterr().out, tmp_path)
    golden = GOLDEN / name
    if os.environ.get("QPNN_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), f"sbatch script changed; if intended: QPNN_UPDATE_GOLDEN=1 pytest {__file__}"
    # what each golden pins, in words
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR2@" in text and "trap requeue USR2" in text
    assert "submitit" not in text and "export OMPI_MCA_osc=${OMPI_MCA_osc:-^ucx}" in text
    command = next(line for line in text.splitlines() if line.startswith("srun "))
    if "--setup" in SCRIPTS[name]:  # the qpnn-hpc of the environment the set-up lines prepare
        assert command.startswith("srun --mpi=pmix qpnn-hpc run ") and "<PYTHON>" not in text
    else:  # this environment's, by absolute path
        assert command.split()[2] == "<VENV_BIN>/qpnn-hpc"
    assert "run <REPO>/jobs/tiny.toml --out <OUT_DIR>/results.h5" in command
    assert ("--array" in SCRIPTS[name]) == ('--shard "$SLURM_ARRAY_TASK_ID/4"' in command)
    assert not list(tmp_path.iterdir())  # a dry run submits and records nothing


def test_gpu_defaults_to_one_rank_per_gpu(tmp_path, capsys):
    main(["submit", str(TINY), "--out", str(tmp_path / "r.h5"), "--gpus-per-node", "4", "--dry-run"])
    text = capsys.readouterr().out
    assert "#SBATCH --ntasks-per-node=4" in text and "#SBATCH --gpus-per-node=4" in text


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    """jobs/tiny.toml through `qpnn-hpc submit --executor debug` (in the submitting process)."""
    d = tmp_path_factory.mktemp("debug")
    out = d / "tiny.h5"
    p = qpnn("submit", TINY, "--out", out, "--executor", "debug")
    return out, p


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    """Two shard files from `qpnn-hpc submit --executor debug --array 2`."""
    d = tmp_path_factory.mktemp("array")
    out = d / "tiny.h5"
    p = qpnn("submit", TINY, "--out", out, "--executor", "debug", "--array", "2")
    return out, [shards.shard_path(out, k, 2) for k in range(2)], p


def test_debug_executor_end_to_end(debug_run):
    out, p = debug_run
    assert "ran job (debug)" in p.stdout and "'done': 12" in p.stdout
    t = results.read_table(out)
    assert (t["status"] == results.DONE).all() and np.all(np.isfinite(t["energy"]))
    subs = json.loads(Path(f"{out}.jobs.json").read_text())["submissions"]
    assert [s["executor"] for s in subs] == ["debug"] and subs[0]["state"] == "COMPLETED"
    s = qpnn("status", out).stdout
    assert f"job {subs[0]['jobs'][0]['id']}: COMPLETED" in s and "12 done" in s


def test_local_executor_end_to_end_and_resume(debug_run, tmp_path):
    """A subprocess run by submitit's LocalExecutor; submitting again resumes (nothing to do)."""
    out = tmp_path / "tiny.h5"
    p = qpnn("submit", TINY, "--out", out, "--executor", "local", "--time", "10")
    assert "ran job (local)" in p.stdout
    t, ref = results.read_table(out), results.read_table(debug_run[0])
    assert (t["status"] == results.DONE).all()
    np.testing.assert_array_equal(t["energy"], ref["energy"])  # same numbers as the debug run
    job = json.loads(Path(f"{out}.jobs.json").read_text())["submissions"][0]["jobs"][0]["id"]
    log = (tmp_path / "tiny.h5.submitit" / job / f"{job}_0_log.out").read_text()
    assert "12 to run" in log
    qpnn("submit", TINY, "--out", out, "--executor", "local", "--time", "10")
    np.testing.assert_array_equal(results.read_table(out)["finished"], t["finished"])  # nothing rerun
    assert len(json.loads(Path(f"{out}.jobs.json").read_text())["submissions"]) == 2


def test_shard_split_is_deterministic_and_complete():
    camp = campaign.load(TINY)  # 6 seed groups of 2 tasks
    specs = camp.specs
    for k in (1, 2, 3, 5, 12):
        parts = shards.split_for(camp, k)
        assert parts == shards.split_for(campaign.load(TINY), k)
        assert sorted(i for p in parts for i in p) == list(range(len(specs)))
        assert all(parts)  # no empty shard
    # seed groups stay together while there are enough groups
    assert shards.split_for(camp, 3) == [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5, 10, 11]]
    assert shards.split_for(camp, 12) == [[i] for i in range(12)]
    with pytest.raises(ConfigError, match="only 12 tasks"):
        shards.split_for(camp, 13)
    with pytest.raises(ConfigError, match=">= 1"):
        shards.split_for(camp, 0)
    assert shards.shard_path("/a/r.h5", 1, 4) == Path("/a/r.shard1-of-4.h5")


def test_shard_files_hold_only_their_tasks(shard_files):
    out, files, p = shard_files
    assert "ran array of 2 shard jobs (debug)" in p.stdout and "qpnn-hpc merge" in p.stdout
    parts = shards.split_for(campaign.load(TINY), 2)
    for f, part in zip(files, parts):
        status = results.read_table(f)["status"]
        assert list(np.nonzero(status == results.DONE)[0]) == part
        assert (np.delete(status, part) == results.PENDING).all()
    s = qpnn("status", out).stdout  # not merged yet: the shard jobs and their progress
    assert "6 of 6 tasks finished" in s and "qpnn-hpc merge" in s and not out.exists()


def test_merge_shards(shard_files, debug_run, tmp_path):
    _, files, _ = shard_files
    out = tmp_path / "merged.h5"
    p = qpnn("merge", *files, "--out", out)
    assert "12 done" in p.stdout
    m, ref = results.read_table(out), results.read_table(debug_run[0])
    assert (m["status"] == results.DONE).all()
    for key in ("energy", "eps", "potential", "loss_curve", "rhat"):
        np.testing.assert_array_equal(m[key], ref[key])
    assert m["campaign_hash"] == ref["campaign_hash"]
    # merging again into the same file: the rows are identical copies, not conflicts
    before = results.read_table(out)["finished"]
    shards.merge(files, out)
    np.testing.assert_array_equal(results.read_table(out)["finished"], before)


def test_merge_one_shard_then_the_other(shard_files, tmp_path):
    _, files, _ = shard_files
    out = tmp_path / "m.h5"
    p = qpnn("merge", files[0], "--out", out)
    assert "6 pending" in p.stdout and "rerun the unfinished shards" in p.stdout
    assert shards.merge([files[1]], out) == {"pending": 0, "done": 12, "failed": 0}
    assert not list(tmp_path.glob("*.tmp"))


def test_merge_refusals(shard_files, debug_run, tmp_path):
    _, files, _ = shard_files
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace("trials = 2", "trials = 1"))
    foreign = tmp_path / "foreign.h5"
    results.create(foreign, campaign.load(other))
    out = tmp_path / "m.h5"
    with pytest.raises(ConfigError, match="belongs to another campaign"):
        shards.merge([files[0], foreign], out)
    with pytest.raises(ConfigError, match="given twice"):
        shards.merge([files[0], files[0]], out)
    # a task finished in two inputs with different results: it ran twice (not one split)
    with pytest.raises(ConfigError, match="conflicting rows: task 0 .* finished in both"):
        shards.merge([files[0], debug_run[0]], out)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))  # nothing written on refusal
    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    with pytest.raises(ConfigError, match="not a readable HDF5 file"):
        shards.merge([files[0], notes], out)
    shards.merge([files[0]], out)
    with pytest.raises(ConfigError, match="also an input"):
        shards.merge([files[1], out], out)
    # the command line: one line naming the problem, exit status 2, no traceback
    p = qpnn("merge", files[0], foreign, "--out", tmp_path / "x.h5", check=False)
    assert p.returncode == 2 and "another campaign" in p.stderr and "Traceback" not in p.stderr


def test_submit_refusals(tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace("trials = 2", "trials = 1"))
    taken = tmp_path / "r.h5"
    results.create(taken, campaign.load(other))
    for args, match in [
        (["--out", taken, "--executor", "debug"], "belongs to another campaign"),
        (["--out", tmp_path / "x.h5", "--executor", "local", "--ntasks-per-node", "2"], "runs one process"),
        (["--out", tmp_path / "x.h5", "--executor", "debug", "--dry-run"], "only the slurm executor"),
        (["--out", tmp_path / "x.h5", "--array", "13", "--dry-run"], "only 12 tasks"),
        (["--out", tmp_path / "no" / "x.h5", "--dry-run"], "does not exist"),
        (["--out", tmp_path / "x.h5", "--time", "0", "--dry-run"], "--time: must be >= 1"),
    ]:
        assert main(["submit", str(TINY), *map(str, args)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("qpnn-hpc submit: error: ") and match in err, (args, err)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["other.toml", "r.h5"]  # nothing submitted


def test_failed_local_job_is_one_line(tmp_path, capsys):
    """An error inside the job (here: --writer mpio without parallel h5py) ends submit with
    the error's own line, the log path and status 2; the record says FAILED."""
    if results.has_parallel_hdf5():
        pytest.skip("h5py has MPI here: --writer mpio would run")
    out = tmp_path / "r.h5"
    assert main(["submit", str(TINY), "--out", str(out), "--executor", "local", "--writer", "mpio"]) == 2
    err = capsys.readouterr().err
    assert "failed: --writer: mpio needs h5py built with MPI" in err and "_log.err" in err and "Traceback" not in err
    assert jobrecord.load(out)[0]["state"] == "FAILED"


def _fake_slurm(bin_dir: Path, sacct: str, squeue: str) -> None:
    bin_dir.mkdir()
    for name, body in (("sacct", sacct), ("squeue", squeue)):
        f = bin_dir / name
        f.write_text("#!/bin/sh\n" + body + "\n")
        f.chmod(0o755)


def test_slurm_state_from_sacct_else_squeue_else_unknown(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    # no accounting (as on the test Slurm): sacct fails, squeue knows pending/running/recent jobs
    _fake_slurm(bin_dir, 'echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1',
                "printf '7|RUNNING|None\\n8_0|COMPLETED|None\\n8_1|PENDING|BeginTime\\n'")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert jobrecord.slurm_states(["7", "8_0", "8_1", "9"]) == {
        "7": ("RUNNING", "squeue"), "8_0": ("COMPLETED", "squeue"), "8_1": ("PENDING (BeginTime)", "squeue")}
    out = tmp_path / "r.h5"
    jobrecord.record(out, {"submitted": "t", "executor": "slurm", "mode": "job", "campaign": "c.toml",
                           "jobs": [{"id": "9", "out": str(out), "shard": None, "tasks": 12}]})
    assert main(["status", str(out)]) == 0  # no results file yet: the jobs only
    assert "job 9: unknown [not known to sacct or squeue]" in capsys.readouterr().out
    # a job Slurm still runs (or will run again) blocks a second submission on its file
    jobrecord.record(out, {"submitted": "t", "executor": "slurm", "mode": "job", "campaign": "c.toml",
                           "jobs": [{"id": "7", "out": str(out), "shard": None, "tasks": 12}]})
    assert main(["submit", str(TINY), "--out", str(out), "--executor", "debug"]) == 2
    assert "Slurm job 7 (RUNNING) of an earlier submission still works on" in capsys.readouterr().err
    assert not out.exists()
    # with accounting, sacct wins (a pending array is one line with a range)
    (bin_dir / "sacct").write_text("#!/bin/sh\nprintf '7|COMPLETED\\n8_[0-1]|PENDING\\n'\n")
    assert jobrecord.slurm_states(["7", "8_1"]) == {"7": ("COMPLETED", "sacct"), "8_1": ("PENDING", "sacct")}


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "slurm").iterdir() if p.suffix in (".sbatch", ".sh")))
def test_slurm_scripts(script):
    """The hand-written scripts parse, and the sbatch ones keep their preemption contract
    (run for real by tests/cluster/test_slurm_campaign.py::test_cpu_sbatch_script_requeues_itself)."""
    import subprocess
    path = ROOT / "slurm" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    if path.suffix == ".sbatch":
        for line in ("#SBATCH --signal=B:USR1@120", "#SBATCH --requeue", "trap requeue USR1",
                     'scontrol requeue "$SLURM_JOB_ID"', 'srun --mpi="$SRUN_MPI" $QPNN "$@" &',
                     "#SBATCH --partition=", "#SBATCH --account=", "module load"):
            assert line in text, (script, line)
        assert ("#SBATCH --gpus-per-task=1" in text) == ("gpu" in script)
