"""The batch script ``qpnn-hpc submit --dry-run`` prints: readable, and submittable as is.

    qpnn-hpc submit jobs/atoms.toml --out results/atoms.h5 --nodes 2 ... --dry-run > atoms.sbatch
    sbatch atoms.sbatch

Its ``#SBATCH`` lines are those of the submitit submission of the same options (built by
submitit from the same :class:`~qpnn_hpc.cluster.executors.Resources`), except that

* the time-limit signal goes to the batch shell (``--signal=B:USR2@<delay>``), which traps
  it and requeues the job (``scontrol requeue``; at most ``max_requeue`` times), as
  ``slurm/campaign-cpu.sbatch`` does; the results file is the checkpoint, so the requeued
  run resumes it;
* the log is one file per job (per array task) beside the results file.

Its command is ``qpnn-hpc run CAMPAIGN --out OUT ...`` (``--shard $SLURM_ARRAY_TASK_ID/K``
in a job array) under ``srun``. Which ``qpnn-hpc`` runs: with ``--setup`` lines, the one
on the PATH that those lines prepare (e.g. ``source .../bin/activate``); without them, the
absolute path of the submitting environment's ``qpnn-hpc`` (a cluster whose nodes share this
file system). The script says which in a comment.

Without ``--dry-run``, ``qpnn-hpc submit`` sends the same resources through submitit,
which pickles the job (its script runs ``python -m submitit.core._submit``) and records it
for ``qpnn-hpc status``.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

# Exported before srun in every Slurm job (both this script and submitit's):
#   one BLAS/torch thread per CPU Slurm gave the task (an explicit setting wins);
#   Open MPI without its UCX one-sided component, whose failed query prints "OSC UCX
#   component priority set inside component query failed" on every rank (the work
#   counter runs on osc/sm or osc/rdma; MPICH ignores the variable; a site setting wins).
ENV_SETUP = ("export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}",
             "export OMPI_MCA_osc=${OMPI_MCA_osc:-^ucx}")

BODY = """\
requeue() {{
  if [ "${{SLURM_RESTART_COUNT:-0}}" -ge {max_requeue} ]; then
    echo "[qpnn-slurm] $(date -Is) signal: not requeued (already ${{SLURM_RESTART_COUNT}} restarts, at most {max_requeue})"
    return
  fi
  echo "[qpnn-slurm] $(date -Is) signal (time limit near or preemption): requeueing job $SLURM_JOB_ID; the rerun resumes the results file"
  scontrol requeue "$SLURM_JOB_ID"
}}
trap requeue USR2

echo "[qpnn-slurm] $(date -Is) job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $SLURM_JOB_NUM_NODES node(s), $SLURM_NTASKS rank(s)"
# In the background, so that the trap runs as soon as the signal comes (bash runs traps
# only between commands; `wait` returns on a trapped signal).
{command} &
srun_pid=$!
wait "$srun_pid"
rc=$?
while kill -0 "$srun_pid" 2>/dev/null; do  # the trap ran: wait until Slurm ends the step
  wait "$srun_pid"
  rc=$?
done
echo "[qpnn-slurm] $(date -Is) srun exited with status $rc"
exit $rc
"""


def qpnn_command(setup: tuple[str, ...]) -> tuple[str, str]:
    """(command, comment): ``qpnn-hpc`` from the --setup environment, else this one's."""
    if setup:
        return "qpnn-hpc", "qpnn-hpc: the one on the PATH that the set-up lines above prepare"
    exe = Path(sys.executable).parent / "qpnn-hpc"
    if exe.exists():
        return shlex.quote(str(exe)), "qpnn-hpc: the submitting environment's (no --setup given)"
    return f"{shlex.quote(sys.executable)} -m qpnn_hpc.cli", "the submitting environment's Python (no --setup given)"


def script(res, folder: Path, run_args: list[str], array: Optional[int] = None) -> str:
    """The batch script for resources ``res`` running ``qpnn-hpc run RUN_ARGS`` (plus
    ``--shard $SLURM_ARRAY_TASK_ID/array`` for a job array). The log goes beside the results
    file (``OUT.<jobid>.log``: that folder exists, Slurm does not create folders)."""
    from submitit.slurm.slurm import _make_sbatch_string
    from qpnn_hpc.cluster.executors import SlurmBackend
    params = SlurmBackend().parameters(res)
    params["setup"] = None
    params.pop("srun_args", None)
    if array is not None:
        params["map_count"] = array
    header = _make_sbatch_string(command="", folder=folder, use_srun=False, **params)
    out = Path(run_args[run_args.index("--out") + 1])
    log = str(out.with_name(out.name + (".%A_%a.log" if array is not None else ".%j.log")))
    sbatch = []
    for line in header.splitlines():
        if not line.startswith("#SBATCH "):
            continue
        key = line[len("#SBATCH --"):].split("=", 1)[0]
        if key in ("output", "error", "wckey"):
            continue
        if key == "signal":
            line = f"#SBATCH --signal=B:USR2@{res.signal_delay_s}"
        sbatch.append(line)
    sbatch.append(f"#SBATCH --output={log}")
    sbatch.sort()
    qpnn, which = qpnn_command(res.setup)
    args = [shlex.quote(a) for a in run_args]
    if array is not None:
        args += ["--shard", f'"$SLURM_ARRAY_TASK_ID/{array}"']
    command = " ".join(["srun", f"--mpi={res.srun_mpi}", qpnn, "run", *args])
    lines = ["#!/bin/bash",
             "# A qpnn-hpc campaign job, written by `qpnn-hpc submit --dry-run`: submit it with `sbatch FILE`.",
             "# On the time-limit signal (or a preemption) it requeues itself; the rerun resumes the results",
             "# file (rows done are never run again)."
             + (f" Job array: task k runs shard k of {array}; then `qpnn-hpc merge`." if array is not None else ""),
             "",
             *sbatch,
             "",
             "# set-up",
             *ENV_SETUP,
             *res.setup,
             "",
             f"# {which}",
             BODY.format(command=command, max_requeue=res.max_requeue)]
    return "\n".join(lines)
