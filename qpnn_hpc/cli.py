"""The ``qpnn-hpc`` command line: one verb set for every kind of campaign.

    qpnn-hpc run jobs/demo.toml --out results.h5 [--batch K] [--device auto|cpu|cuda]
    mpiexec -n 4 qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5
    qpnn-hpc status results.h5
    qpnn-hpc report results.h5 --out DIR
    qpnn-hpc submit jobs/atoms.toml --out atoms.h5 [--array K] ...; qpnn-hpc merge ...

Exit status: 0 every task done; 3 the run finished but some tasks failed (``status`` says
why; ``--retry-failed`` runs them again); 2 bad input (one line naming the field and the
fix, never a traceback); 130 interrupted (rerun the same command to resume).
"""
from __future__ import annotations

import argparse
import sys

import os

from qpnn_hpc.config import ConfigError
from qpnn_hpc.atoms.density_verb import add_parser as _add_density_parser
from qpnn_hpc.campaigns.shards import add_parser as _add_merge_parser
from qpnn_hpc.cluster.pipeline import add_parser as _add_pipeline_parser
from qpnn_hpc.cluster.submit import add_parser as _add_submit_parser

EXIT_FAILED_TASKS = 3


def _blas_threads(campaign) -> None:
    """Kinds that want n BLAS threads per rank get them, unless the user set a number;
    before numpy loads (it reads the variables once)."""
    from qpnn_hpc.campaigns import files, kinds
    n = kinds.blas_threads(files.kind_of(campaign))
    if n is not None and "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(n))


def _run(args) -> int:
    _blas_threads(args.campaign)
    from qpnn_hpc.campaigns.engine import run_campaign
    counts = run_campaign(args.campaign, args.out, batch=args.batch, device=args.device, progress=not args.quiet,
                          writer=args.writer, chains_over_ranks=args.chains_over_ranks,
                          retry_failed=args.retry_failed)
    if counts.get("failed"):
        if _rank() == 0:
            print(f"qpnn-hpc run: {counts['failed']} task(s) failed (`qpnn-hpc status {args.out}` says why); "
                  "`--retry-failed` runs them again", file=sys.stderr)
        return EXIT_FAILED_TASKS
    return 0


def _status(args) -> int:
    from qpnn_hpc.campaigns import kinds, store
    from qpnn_hpc.cluster import pipeline
    from qpnn_hpc.cluster.jobrecord import print_jobs
    if pipeline.is_pipeline_file(args.results):
        pipeline.print_status(pipeline.load(args.results))
        return 0
    if print_jobs(args.results):  # jobs submitted by `qpnn-hpc submit`; True: no results file yet
        return 0
    table = store.read_table(args.results)
    kind = kinds.get(table["kind"])
    counts = store.status_counts(args.results)
    print(f"{args.results}: {kind.name} campaign {table.get('campaign_name', '?')!r}, {sum(counts.values())} "
          "tasks: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for i in (table["status"] == store.FAILED).nonzero()[0][:20]:
        print(f"  failed {table['id'][i]} ({kind.describe(table, i)}): {table['reason'][i]}")
    return 0


def _report(args) -> int:
    from pathlib import Path
    from qpnn_hpc.campaigns import kinds, store
    table = store.read_table(args.results)
    kind = kinds.get(table["kind"])
    if kind.report is None:
        raise ConfigError(f"report: {kind.name} campaigns have no report; `qpnn-hpc status` shows their rows")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = kind.report(args.results, table, out)
    print(f"report written to {path}")
    return 0


def _rank() -> int:
    """MPI rank if MPI is up (errors are printed once, by rank 0)."""
    if "mpi4py.MPI" not in sys.modules:
        return 0
    from mpi4py import MPI
    return MPI.COMM_WORLD.Get_rank() if MPI.Is_initialized() else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qpnn-hpc", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run or resume a campaign of any kind (under mpiexec: over all ranks)")
    run.add_argument("campaign", help="campaign TOML file (jobs/*.toml)")
    run.add_argument("--out", required=True, help="HDF5 results file (created, or resumed if it exists)")
    run.add_argument("--batch", type=int, default=None,
                     help="tasks of one batch key run as one batched unit, e.g. trials differing only in "
                          "their seed as one batched model (default: the kind's, 1 for trials)")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    run.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"],
                     help="auto: parallel HDF5 (mpio) where h5py has MPI, else rank 0 gathers and writes")
    run.add_argument("--chains-over-ranks", action="store_true",
                     help="run tasks one at a time on all ranks, spreading each task's evaluation chain "
                          "blocks (eval.chain_blocks) over the ranks")
    run.add_argument("--retry-failed", action="store_true", help="run failed tasks again (default: only pending)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(fn=_run)
    st = sub.add_parser("status", help="done / failed / pending tasks of a results file (or of every stage "
                                       "of a pipeline file), and its submitted jobs")
    st.add_argument("results", help="a results file (.h5), or a pipeline file (.toml)")
    st.set_defaults(fn=_status)
    rep = sub.add_parser("report", help="markdown tables and PNG plots from a results file")
    rep.add_argument("results")
    rep.add_argument("--out", required=True, help="output folder")
    rep.set_defaults(fn=_report)
    _add_submit_parser(sub)
    _add_pipeline_parser(sub)
    _add_merge_parser(sub)
    _add_density_parser(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        if _rank() == 0:
            print(f"qpnn-hpc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        _abort_other_ranks(args.command)
        raise


def _abort_other_ranks(command: str) -> None:
    """An unexpected error on one of several MPI ranks: print it and MPI_Abort, since the
    other ranks would otherwise wait forever in a collective call (bcast, barrier, a
    collective HDF5 close). The results file keeps every row finished so far (each row's
    status is written last), and a rerun resumes it."""
    if "mpi4py.MPI" not in sys.modules:
        return
    from mpi4py import MPI
    if not MPI.Is_initialized() or MPI.Is_finalized() or MPI.COMM_WORLD.Get_size() == 1:
        return
    import traceback
    rank = MPI.COMM_WORLD.Get_rank()
    print(f"qpnn-hpc {command}: rank {rank}: unexpected error, aborting all ranks; finished rows are kept, "
          f"rerun to resume:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    MPI.COMM_WORLD.Abort(1)


if __name__ == "__main__":
    sys.exit(main())
