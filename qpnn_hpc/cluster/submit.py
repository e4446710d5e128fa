"""``qpnn-hpc submit``: run a campaign as batch jobs through submitit.

    qpnn-hpc submit jobs/X.toml --out results.h5 --nodes 2 --ntasks-per-node 4 --gpus-per-node 4 \\
        --time 720 --partition gpu --account myproj --setup "module load cuda"
    qpnn-hpc submit jobs/X.toml --out results.h5 --array 8 --ntasks-per-node 1 --time 240 ...
    qpnn-hpc merge results.shard*-of-8.h5 --out results.h5
    qpnn-hpc status results.h5

Two modes:

* one MPI job (default): nodes x ntasks-per-node ranks started by ``srun --mpi=pmix``;
  every rank calls :func:`qpnn_hpc.campaigns.engine.run_campaign` (dynamic scheduling, one results file);
* ``--array K``: a Slurm job array of K jobs; job k runs shard k of the campaign
  (:mod:`qpnn_hpc.campaigns.shards`) into its own shard file; ``qpnn-hpc merge`` combines them.

Preemption and time limits: the job (:class:`qpnn_hpc.cluster.job.CampaignJob`) is a
:class:`submitit.helpers.Checkpointable`.
The HDF5 file is the checkpoint (a row is done and complete, or pending), so on the
signal (``--signal-delay`` seconds before the limit, or a preemption) submitit requeues
the job and the rerun resumes the file; rows already done are never run again. A job
Slurm requeues by itself (``scontrol requeue``, node failure) resumes the same way, and
so does submitting the same command again.

Executors (:mod:`qpnn_hpc.cluster.executors`): ``slurm`` (returns once submitted), ``local`` (a
subprocess here) and ``debug`` (in this process); both of these wait for the jobs.
Submitted job ids are recorded in ``<out>.jobs.json`` (:mod:`qpnn_hpc.cluster.jobrecord`), which
``qpnn-hpc status`` reads. ``--dry-run`` prints the sbatch script and submits nothing.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Optional

from qpnn_hpc.cluster import executors
from qpnn_hpc.cluster import jobrecord
from qpnn_hpc.config import ConfigError


def _resources(args) -> executors.Resources:
    tasks = args.ntasks_per_node
    if tasks is None:  # one MPI rank per GPU by default
        tasks = args.gpus_per_node if args.gpus_per_node else 1
    sbatch = []
    for kv in args.sbatch:
        key, eq, value = kv.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise ConfigError(f"--sbatch: expected KEY=VALUE or KEY, got {kv!r}")
        sbatch.append((key, value if eq else True))
    return executors.Resources(
        nodes=args.nodes, tasks_per_node=tasks, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
        time_min=args.time, partition=args.partition, account=args.account, mem_gb=args.mem_gb, name=args.name,
        setup=tuple(args.setup), srun_mpi=args.srun_mpi, signal_delay_s=args.signal_delay,
        max_requeue=args.max_requeue, sbatch=tuple(sbatch))


def _describe(res: executors.Resources) -> str:
    gpu = f", {res.gpus_per_node} GPU(s)/node" if res.gpus_per_node else ""
    where = "".join(f", {k} {v}" for k, v in (("partition", res.partition), ("account", res.account)) if v)
    return f"{res.nodes} node(s) x {res.tasks_per_node} task(s){gpu}, {res.time_min} min{where}"


def _check_out(camp, out: Path) -> None:
    """Refuse now what the job would refuse later: a missing folder, another campaign's file."""
    from qpnn_hpc.campaigns import store
    if not out.parent.is_dir():
        raise ConfigError(f"--out: folder {str(out.parent)!r} does not exist")
    if out.exists():
        store.check_belongs(out, camp)


def submit(campaign_file, out, res: executors.Resources, executor: str = "slurm", array: Optional[int] = None,
           batch: Optional[int] = None, device: str = "auto", writer: str = "auto", folder=None, dry_run: bool = False,
           command: str = "") -> dict:
    """Submit the campaign (one MPI job, or an array of ``array`` shard jobs). Returns
    {"jobs": [...], "outs": [...], "folder": ..., "results": [...] (executors that wait),
    "script": ... (dry run)}."""
    import submitit
    from qpnn_hpc.campaigns import files
    from qpnn_hpc.campaigns import shards
    from qpnn_hpc.cluster.job import CampaignJob
    backend = executors.get(executor)
    backend.check(res)
    if batch is not None and batch < 1:
        raise ConfigError("--batch: must be >= 1")
    campaign_file = Path(campaign_file).resolve()
    camp = files.load(campaign_file)  # a bad file fails here, not in the queue
    out = Path(out).resolve()
    folder = Path(folder).resolve() if folder else out.with_name(out.name + ".submitit")
    job_folder = folder / "%j"
    # tasks per job (checks 1 <= K <= tasks for an array)
    sizes = [len(camp.specs)] if array is None else [len(t) for t in shards.split_for(camp, array)]
    outs = [out] if array is None else [shards.shard_path(out, k, array) for k in range(array)]
    for o in outs:
        _check_out(camp, o)
    if dry_run:
        run_args = [str(campaign_file), "--out", str(out)]
        for flag, value, default in (("--batch", batch, None), ("--device", device, "auto"),
                                     ("--writer", writer, "auto")):
            if value != default:
                run_args += [flag, str(value)]
        return {"script": backend.preview(folder, res, run_args, array), "outs": outs, "folder": folder,
                "jobs": []}

    busy = jobrecord.active_jobs(out, outs)  # two jobs must never write one file
    if busy:
        jid, state, path = busy[0]
        raise ConfigError(f"submit: Slurm job {jid} ({state}) of an earlier submission still works on {path} "
                          f"(a requeued job waits as PENDING and resumes by itself); wait for it, or "
                          f"`scancel {jid.split('_')[0]}` first")
    kw = dict(batch=batch, device=device, writer=writer)
    calls = ([CampaignJob(str(campaign_file), str(out), **kw)] if array is None else
             [CampaignJob(str(campaign_file), str(o), shard=(k, array), **kw) for k, o in enumerate(outs)])
    ex = backend.executor(job_folder, res)
    try:
        if len(calls) == 1:
            jobs = [ex.submit(calls[0])]
        else:
            with ex.batch():
                jobs = [ex.submit(c) for c in calls]
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError, OSError) as e:
        raise ConfigError(f"submit: {executor} submission failed: {str(e).strip()}") from None
    entry = {
        "submitted": jobrecord.now(), "executor": executor, "mode": "job" if array is None else "array",
        "campaign": str(campaign_file), "kind": camp.kind, "campaign_hash": camp.hash, "folder": str(folder),
        "resources": res.as_dict(), "resources_text": _describe(res), "command": command,
        "jobs": [{"id": str(j.job_id), "out": str(o), "shard": None if array is None else f"{k}/{array}",
                  "tasks": size} for k, (j, o, size) in enumerate(zip(jobs, outs, sizes))],
    }
    if array is not None:
        entry["merge_glob"] = str(shards.shard_path(out, "*", array))
    index = jobrecord.record(out, entry)
    result = {"jobs": jobs, "outs": outs, "folder": folder, "record": jobrecord.sidecar(out)}
    if backend.waits:
        try:
            result["results"], state = _wait(jobs, executor)
        except ConfigError:
            jobrecord.update(out, index, state="FAILED")
            raise
        finally:
            literal = folder / "%j"  # submitit's local controller makes this empty folder
            if literal.is_dir() and not any(literal.iterdir()):
                literal.rmdir()
        jobrecord.update(out, index, state=state)
    return result


def _wait(jobs, executor: str):
    """Wait for local/debug jobs; a ConfigError inside a job is re-raised as one line."""
    import submitit
    outcomes = []
    for job in jobs:
        if executor == "debug":  # exception() runs it here without submitit's post-mortem debugger
            err = job.exception()
            if err is not None:
                if isinstance(err, ConfigError):
                    raise err
                raise ConfigError(f"job {job.job_id} failed: {type(err).__name__}: {err}") from err
            outcomes.append(job.result())
        else:
            try:
                outcomes.append(job.result())
            except submitit.core.utils.UncompletedJobError as e:  # failed, or killed
                raise ConfigError(f"job {job.job_id} failed: {_error_line(str(e))} (log: {job.paths.stderr})") from None
    return outcomes, "COMPLETED"


def _error_line(trace: str) -> str:
    """The exception line of a job's traceback ("ConfigError: msg" -> "msg")."""
    lines = [ln.strip() for ln in trace.splitlines()]
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", ln)]
    if not errors:
        return next((ln for ln in lines if ln), "no message")
    last = errors[-1]
    return last.split(": ", 1)[1] if last.split(":", 1)[0].endswith("ConfigError") and ": " in last else last


# ------------------------------------------------------------------------------ CLI

def _cli(args) -> int:
    res = _resources(args)
    r = submit(args.campaign, args.out, res, executor=args.executor, array=args.array, batch=args.batch,
               device=args.device, writer=args.writer, folder=args.folder, dry_run=args.dry_run,
               command=shlex.join(["qpnn-hpc", *sys.argv[1:]]))
    if args.dry_run:
        print(r["script"], end="")
        return 0
    ids = ", ".join(str(j.job_id) for j in r["jobs"])
    what = "job" if args.array is None else f"array of {args.array} shard jobs"
    verb = "ran" if executors.get(args.executor).waits else "submitted"
    print(f"{verb} {what} ({args.executor}): {ids}; {_describe(res)}")
    print(f"  results: {', '.join(map(str, r['outs'])) if len(r['outs']) <= 4 else r['outs'][0].parent}")
    print(f"  logs:    {r['folder']}/<job id>/; job ids recorded in {r['record']}")
    if "results" in r:
        for job, counts in zip(r["jobs"], r["results"]):
            print(f"  job {job.job_id} finished: {counts}")
    else:
        print(f"  watch:   qpnn-hpc status {args.out}")
    if args.array is not None:
        from qpnn_hpc.campaigns.shards import shard_path
        print(f"  then:    qpnn-hpc merge {shard_path(args.out, '*', args.array)} --out {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``qpnn-hpc submit CAMPAIGN --out results.h5 [Slurm options]``."""
    p = subparsers.add_parser(
        "submit", help="run a campaign as batch jobs (Slurm through submitit; or local / debug)",
        description="Submit a campaign: one MPI job over srun, or (--array K) K shard jobs merged with "
                    "`qpnn-hpc merge`. A preempted or timed-out job requeues itself and resumes the HDF5 file.",
        epilog="examples:\n"
               "  qpnn-hpc submit jobs/atoms.toml --out results/atoms.h5 --nodes 2 --gpus-per-node 4 --time 240\n"
               "  qpnn-hpc submit jobs/demo.toml --out results/demo.h5 --array 8 --partition short  "
               "# then qpnn-hpc merge\n"
               "  qpnn-hpc submit jobs/tiny.toml --out results/tiny.h5 --dry-run    # print the sbatch script")
    p.add_argument("campaign", help="campaign TOML file (jobs/*.toml)")
    p.add_argument("--out", required=True, help="HDF5 results file (created, or resumed if it exists)")
    p.add_argument("--executor", default="slurm", choices=sorted(executors.BACKENDS),
                   help="slurm (default; returns once submitted), local (a subprocess here) or debug "
                        "(in this process); local and debug wait for the result")
    p.add_argument("--array", type=int, default=None, metavar="K",
                   help="a job array of K jobs, each running one shard into <out stem>.shard<k>-of-K.h5")
    add_resource_arguments(p)
    p.add_argument("--folder", default=None, help="submitit folder for scripts, pickles and logs "
                                                  "(default <out>.submitit/; on a shared file system)")
    p.add_argument("--dry-run", action="store_true", help="print the sbatch script; submit nothing")
    p.set_defaults(fn=_cli)


def add_resource_arguments(p) -> None:
    """The resource and campaign-run options of ``submit`` (also ``pipeline --submit``)."""
    g = p.add_argument_group("resources (per job; with --array, per array task)")
    g.add_argument("--nodes", type=int, default=1, help="nodes per job (default 1)")
    g.add_argument("--ntasks-per-node", type=int, default=None,
                   help="MPI ranks per node (default: --gpus-per-node, i.e. one rank per GPU, or 1)")
    g.add_argument("--gpus-per-node", type=int, default=0,
                   help="GPUs per node (0: CPU only; with --executor local GPUs 0..G-1 are made visible, "
                        "0 hides them)")
    g.add_argument("--cpus-per-task", type=int, default=None, help="CPU cores per rank (sets OMP_NUM_THREADS)")
    g.add_argument("--mem-gb", type=float, default=None, help="memory per node (GB)")
    g.add_argument("--time", type=int, default=60, help="time limit in minutes (default 60)")
    g.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default partition)")
    g.add_argument("--account", default=None, help="Slurm account charged for the job (default: your default)")
    g.add_argument("--name", default="qpnn-hpc", help="Slurm job name")
    g.add_argument("--setup", action="append", default=[], metavar="LINE",
                   help="shell line run before srun, repeatable: 'module load openmpi cuda', "
                        "'source /path/venv/bin/activate'")
    g.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                   help="extra #SBATCH option, repeatable: --sbatch qos=long --sbatch constraint=a100")
    g.add_argument("--srun-mpi", default="pmix", help="srun --mpi= plugin: pmix (Open MPI), pmi2 (MPICH)")
    g.add_argument("--signal-delay", type=int, default=120,
                   help="seconds before the time limit at which the job checkpoints and requeues (default 120)")
    g.add_argument("--max-requeue", type=int, default=10,
                   help="time limits reached after which the job is not requeued again (default 10)")
    r = p.add_argument_group("campaign run")
    r.add_argument("--batch", type=int, default=None, help="as `qpnn-hpc run --batch`")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="as `qpnn-hpc run --device`")
    r.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"], help="as `qpnn-hpc run --writer`")
