"""The ``qpnn-hpc`` command line.

    qpnn-hpc run jobs/demo.toml --out results.h5 [--batch K] [--device auto|cpu|cuda]
    mpiexec -n 4 qpnn-hpc run jobs/demo.toml --out results.h5
    qpnn-hpc status results.h5
    qpnn-hpc report results.h5 --out DIR

Bad input ends with one line naming the field and the fix (exit status 2), never a
traceback.
"""
from __future__ import annotations

import argparse
import sys

from .config import ConfigError
from .dataset_campaign import add_parser as _add_dataset_parser
from .shards import add_parser as _add_merge_parser
from .submit import add_parser as _add_submit_parser


def _run(args) -> int:
    from .runner import run_campaign
    run_campaign(args.campaign, args.out, batch=args.batch, device=args.device, progress=not args.quiet,
                 writer=args.writer, chains_over_ranks=args.chains_over_ranks)
    return 0


def _status(args) -> int:
    from . import results
    import h5py
    from .jobrecord import print_jobs
    if print_jobs(args.results):  # jobs submitted by `qpnn-hpc submit`; True: no results file yet
        return 0
    try:
        with h5py.File(args.results, "r") as f:
            name = f.attrs.get("campaign_name", "?")
    except OSError as e:
        raise ConfigError(f"results: cannot read {args.results!r} ({e})") from None
    counts = results.status_counts(args.results)
    total = sum(counts.values())
    print(f"{args.results}: campaign {name!r}, {total} tasks: " +
          ", ".join(f"{v} {k}" for k, v in counts.items()))
    table = results.read_table(args.results)
    for i in (table["status"] == results.FAILED).nonzero()[0][:20]:
        print(f"  failed {table['id'][i]} ({table['system'][i]}, {table['method'][i]}): {table['reason'][i]}")
    return 0


def _report(args) -> int:
    from .report import write_report
    path = write_report(args.results, args.out)
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
    run = sub.add_parser("run", help="run or resume a campaign (under mpiexec: over all ranks)")
    run.add_argument("campaign", help="campaign TOML file (jobs/*.toml)")
    run.add_argument("--out", required=True, help="HDF5 results file (created, or resumed if it exists)")
    run.add_argument("--batch", type=int, default=1,
                     help="trials differing only in their seed trained as one batched model (default 1)")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    run.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"],
                     help="auto: parallel HDF5 (mpio) where h5py has MPI, else rank 0 gathers and writes")
    run.add_argument("--chains-over-ranks", action="store_true",
                     help="run tasks one at a time on all ranks, spreading each task's evaluation chain "
                          "blocks (eval.chain_blocks) over the ranks")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(fn=_run)
    st = sub.add_parser("status", help="done / failed / pending tasks of a results file")
    st.add_argument("results")
    st.set_defaults(fn=_status)
    rep = sub.add_parser("report", help="markdown tables and PNG plots from a results file")
    rep.add_argument("results")
    rep.add_argument("--out", required=True, help="output folder")
    rep.set_defaults(fn=_report)
    _add_dataset_parser(sub)
    _add_submit_parser(sub)
    _add_merge_parser(sub)
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
