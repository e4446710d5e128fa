"""``qpnn-hpc pipeline``: campaigns that depend on each other, run or submitted as one.

    qpnn-hpc pipeline jobs/functionals/pipeline.toml                      # here, in order
    mpiexec -n 2 qpnn-hpc pipeline jobs/functionals/pipeline.toml         # here, each stage on 2 ranks
    qpnn-hpc pipeline jobs/functionals/pipeline.toml --submit --partition cpu --ntasks-per-node 32 ...
    qpnn-hpc status jobs/functionals/pipeline.toml                        # every stage

A pipeline file::

    name = "functionals"
    [[stages]]
    name = "dataset"                          # a name for status lines and dependencies
    campaign = "jobs/dataset1d.toml"          # a campaign file of any kind
    out = "data/dataset1d.h5"                 # its results file
    [[stages]]
    name = "grid"
    campaign = "jobs/functionals/grid.toml"
    out = "results/functionals_grid.h5"
    after = ["dataset"]                       # stages that must be complete first
    report = "results/functionals_grid_report"   # optional: `qpnn-hpc report` after the run

A stage is complete when its results file has every task done (and its report, if it
has one, exists); a complete stage is skipped, so running the same command again
resumes the pipeline where it stopped. Here, the stages run one after another (every MPI
rank takes part in each). With ``--submit``, each incomplete stage is one batch job
(:mod:`qpnn_hpc.cluster.submit` options and executors); on Slurm the jobs are chained with
``--dependency=afterok:<the jobs of its after stages>``, so they are all submitted at once
and a failed stage stops the ones after it; the local and debug executors run them in
order. Job ids are recorded beside each stage's results file (``<out>.jobs.json``) and
``qpnn-hpc status PIPELINE.toml`` shows each stage's tasks and jobs.

A stage's campaign may read its dependencies' files when it is expanded (the final
functional training reads the grid search's file): such a campaign is checked when its
job starts, not at submission.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qpnn_hpc.config import ConfigError, check, field, from_dict, read_toml


@dataclass(frozen=True)
class Stage:
    name: str = field(help="stage name (status lines, dependencies)")
    campaign: str = field(help="campaign file of any kind (relative to the working directory)")
    out: str = field(help="its results file")
    after: tuple[str, ...] = field((), help="stages that must be complete before this one runs")
    report: str = field("", help="a folder: `qpnn-hpc report` into it after the run (optional)")


@dataclass(frozen=True)
class Pipeline:
    name: str = field(help="pipeline name (free text)")
    stages: tuple[Stage, ...] = field(help="[[stages]] tables, in an order that respects `after`")
    description: str = field("", help="free text")

    def __post_init__(self):
        check(len(self.stages) > 0, "stages", "empty: add at least one [[stages]] table")
        seen: set = set()
        for i, s in enumerate(self.stages):
            check(s.name not in seen, f"stages[{i}].name", f"{s.name!r} is used twice; name each stage once")
            for a in s.after:
                check(a in seen, f"stages[{i}].after", f"{a!r} is not a stage before {s.name!r}; list stages in "
                                                       f"order (known so far: {sorted(seen) or 'none'})")
            seen.add(s.name)


def is_pipeline_file(path) -> bool:
    """A TOML file with [[stages]] (read without expanding anything)."""
    p = Path(path)
    return p.suffix == ".toml" and p.is_file() and "stages" in read_toml(p, "pipeline file")


def load(path) -> Pipeline:
    data = read_toml(path, "pipeline file")
    try:
        return from_dict(Pipeline, data)
    except ConfigError as e:
        raise ConfigError(f"{Path(path).name}: {e}") from None


def progress(stage: Stage) -> dict:
    """Task counts of a stage's results file ({} if it does not exist yet)."""
    from qpnn_hpc.campaigns import store
    if not Path(stage.out).exists():
        return {}
    store.read_attrs(stage.out, f"stage {stage.name}: out")
    return store.status_counts(stage.out)


def complete(stage: Stage) -> bool:
    counts = progress(stage)
    done = bool(counts) and counts["pending"] == 0 and counts["failed"] == 0
    return done and (not stage.report or (Path(stage.report) / "report.md").exists())


def report(stage: Stage) -> Path:
    """`qpnn-hpc report` of a stage's results file into its report folder."""
    from qpnn_hpc.campaigns import kinds, store
    table = store.read_table(stage.out)
    kind = kinds.get(table["kind"])
    check(kind.report is not None, f"stage {stage.name}: report", f"{kind.name} campaigns have no report")
    out = Path(stage.report)
    out.mkdir(parents=True, exist_ok=True)
    return kind.report(stage.out, table, out)


def run_here(pipe: Pipeline, batch=None, device: str = "auto", writer: str = "auto", progress_lines: bool = True):
    """Run the incomplete stages in order (collective over the MPI world); a stage with failed
    tasks stops the pipeline (ConfigError naming it)."""
    from qpnn_hpc import parallel
    from qpnn_hpc.campaigns.engine import run_campaign
    r = parallel.ranks()
    for stage in pipe.stages:
        if parallel.agree(r.comm, lambda: complete(stage)):
            if r.rank == 0 and progress_lines:
                print(f"[qpnn-hpc] pipeline {pipe.name}: stage {stage.name} complete, skipped", flush=True)
            continue
        if r.rank == 0 and progress_lines:
            print(f"[qpnn-hpc] pipeline {pipe.name}: stage {stage.name}: {stage.campaign} -> {stage.out}", flush=True)
        Path(stage.out).parent.mkdir(parents=True, exist_ok=True)
        counts = run_campaign(stage.campaign, stage.out, batch=batch, device=device, writer=writer,
                              progress=progress_lines)  # the final counts, on rank 0
        failed = parallel.agree(r.comm, lambda: counts.get("failed", 0))
        if failed:
            raise ConfigError(f"stage {stage.name}: {failed} task(s) failed (`qpnn-hpc status {stage.out}` says "
                              "why); the stages after it were not run")
        if stage.report and r.rank == 0:
            print(f"[qpnn-hpc] pipeline {pipe.name}: stage {stage.name}: report written to {report(stage)}",
                  flush=True)


def submit(pipe: Pipeline, res, executor: str = "slurm", batch=None, device: str = "auto", writer: str = "auto",
           command: str = "") -> list[tuple[str, str]]:
    """Submit the incomplete stages as chained jobs; returns [(stage, job id or 'complete')]."""
    from qpnn_hpc.cluster import executors, jobrecord
    from qpnn_hpc.cluster.job import CampaignJob
    backend = executors.get(executor)
    backend.check(res)
    jobs: dict[str, str] = {}
    out = []
    for stage in pipe.stages:
        if complete(stage):
            out.append((stage.name, "complete"))
            continue
        Path(stage.out).parent.mkdir(parents=True, exist_ok=True)
        waits_for = [jobs[a] for a in stage.after if a in jobs]
        folder = Path(stage.out).resolve().with_name(Path(stage.out).name + ".submitit")
        ex = backend.executor(folder / "%j", res)
        if waits_for and executor == "slurm":
            ex.update_parameters(dependency="afterok:" + ":".join(waits_for))
        job = ex.submit(CampaignJob(stage.campaign, stage.out, batch=batch, device=device, writer=writer,
                                    report=stage.report or None, stage=True))
        jobs[stage.name] = str(job.job_id)
        index = jobrecord.record(stage.out, {"submitted": jobrecord.now(), "executor": executor, "mode": "job",
                                     "campaign": stage.campaign, "pipeline": pipe.name, "stage": stage.name,
                                     "after": waits_for, "folder": str(folder), "command": command,
                                     "jobs": [{"id": str(job.job_id), "out": stage.out, "shard": None}]})
        if backend.waits:  # local, debug: run in order, each waits for the one before
            try:
                job.result()
            except Exception as e:
                jobrecord.update(stage.out, index, state="FAILED")
                raise ConfigError(f"stage {stage.name}: job {job.job_id} failed: {str(e).strip().splitlines()[-1]}"
                                  ) from None
            jobrecord.update(stage.out, index, state="COMPLETED")
        out.append((stage.name, str(job.job_id)))
    return out


def print_status(pipe: Pipeline) -> None:
    """Each stage: its results file's task counts and its recorded jobs."""
    from qpnn_hpc.cluster import jobrecord
    print(f"pipeline {pipe.name}: {len(pipe.stages)} stages")
    for stage in pipe.stages:
        counts = progress(stage)
        state = ("complete" if complete(stage) else
                 ", ".join(f"{v} {k}" for k, v in counts.items()) if counts else "not started")
        after = f" (after {', '.join(stage.after)})" if stage.after else ""
        print(f"  stage {stage.name}{after}: {stage.out}: {state}")
        subs = jobrecord.load(stage.out)
        if subs:
            last = subs[-1]
            ids = [j["id"] for j in last.get("jobs", [])]
            states = jobrecord.slurm_states(ids) if last.get("executor") == "slurm" else {}
            for j in ids:
                st = states.get(j, (last.get("state", "unknown"), ""))[0]
                print(f"    job {j} ({last.get('executor')}): {st}")


# ------------------------------------------------------------------------------ CLI

def _cli(args) -> int:
    import shlex
    import sys
    pipe = load(args.pipeline)
    if not args.submit:
        run_here(pipe, batch=args.batch, device=args.device, writer=args.writer, progress_lines=not args.quiet)
        return 0
    from qpnn_hpc.cluster.submit import _resources
    done = submit(pipe, _resources(args), executor=args.executor, batch=args.batch, device=args.device,
                  writer=args.writer, command=shlex.join(["qpnn-hpc", *sys.argv[1:]]))
    for name, job in done:
        print(f"  stage {name}: {'complete, skipped' if job == 'complete' else f'job {job}'}")
    print(f"  watch: qpnn-hpc status {args.pipeline}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``qpnn-hpc pipeline PIPELINE.toml [--submit ...]``."""
    from qpnn_hpc.cluster import executors
    from qpnn_hpc.cluster.submit import add_resource_arguments
    p = subparsers.add_parser(
        "pipeline", help="run dependent campaigns in order (or --submit them as chained batch jobs)",
        description="Run a pipeline of campaigns (jobs/functionals/pipeline.toml): the stages not yet complete, "
                    "in order; complete stages are skipped. With --submit, one batch job per stage, chained "
                    "with afterok on Slurm.",
        epilog="examples:\n"
               "  mpiexec -n 2 qpnn-hpc pipeline jobs/functionals/pipeline.toml\n"
               "  qpnn-hpc pipeline jobs/functionals/pipeline.toml --submit --nodes 1 --ntasks-per-node 8 --time 120\n"
               "  qpnn-hpc status jobs/functionals/pipeline.toml    # every stage")
    p.add_argument("pipeline", help="pipeline TOML file ([[stages]] with name, campaign, out, after, report)")
    p.add_argument("--submit", action="store_true", help="submit the stages as batch jobs instead of running here")
    p.add_argument("--executor", default="slurm", choices=sorted(executors.BACKENDS),
                   help="with --submit: slurm (chained jobs, returns once submitted), local or debug (in order)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_resource_arguments(p)
    p.set_defaults(fn=_cli)
