"""Run a campaign of any kind: schedule its pending tasks over the MPI ranks, store the rows.

``run_campaign(campaign_file, out)`` is collective: every rank of the MPI world calls
it (a plain process is a world of one). Steps:

1. every rank loads and expands the campaign (a bad file fails everywhere, nothing written)
   and picks its device (``--device cuda`` without a GPU fails here, nothing written);
2. rank 0 reads what ``out`` holds, without opening it for writing: nothing to run (a
   finished file, even a read-only one in a read-only folder) -> the counts, and done;
   a read-only file with tasks to run -> ConfigError before any work;
3. rank 0 takes the lock ``<out>.lock`` (:mod:`qpnn_hpc.campaigns.lock`: one run writes a
   file; a second is refused naming the holder; a stale lock, left by a killed run on this
   host or by this same Slurm job before a requeue, is taken over) and only then checks
   that an existing ``out`` belongs to this campaign, or creates the file; the lock is
   removed when the run ends, also on an error or an interrupt;
4. pending tasks are grouped into work units of up to ``batch`` tasks with one batch key
   (:attr:`Kind.batch_key`: trials that differ only in their seed train as one batched
   model); finished tasks are never run again (resume), failed ones only with
   ``retry_failed``;
5. units are taken dynamically, longest first (:func:`qpnn_hpc.parallel.dynamic`); rows are
   written by their own rank (parallel HDF5) or sent to rank 0, whose receiving thread
   writes them as they come (:class:`qpnn_hpc.parallel.Gather`), so ``qpnn-hpc status``
   sees every rank's rows within about a second, also during a long unit of rank 0.

A unit that raises is recorded as failed rows with the reason, and the campaign goes on.
Ctrl-C or SIGTERM (turned into KeyboardInterrupt while the run holds the default SIGTERM
action; a batch system's own handler, e.g. submitit's, is left alone): rank 0 prints one
line, ``qpnn-hpc run: interrupted; N rows kept in OUT; rerun the same command to resume``,
the lock is removed, and KeyboardInterrupt goes on (the CLI exits 130).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from qpnn_hpc import parallel
from qpnn_hpc.campaigns import files, lock, store
from qpnn_hpc.config import ConfigError


def work_units(kind, specs, status, batch: int, retry_failed: bool = False) -> list[list[int]]:
    """Runnable task indices grouped by batch key (in campaign order), chunks of <= batch,
    longest first (LPT: the last units to finish are the short ones)."""
    runnable = (store.PENDING, store.FAILED) if retry_failed else (store.PENDING,)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        if status[i] in runnable:
            groups.setdefault(kind.batch_key(s), []).append(i)
    units = []
    for idx in groups.values():
        units.extend(idx[j:j + batch] for j in range(0, len(idx), batch))
    cost = {k: kind.cost(specs[idx[0]]) for k, idx in groups.items()}  # once per group
    return sorted(units, key=lambda u: -len(u) * cost[kind.batch_key(specs[u[0]])])


def _run_unit(kind, specs, unit, device, comm=None) -> list[dict]:
    try:
        rows = kind.run([specs[i] for i in unit], device, comm)
        if len(rows) != len(unit):
            raise RuntimeError(f"kind {kind.name} returned {len(rows)} rows for {len(unit)} tasks")
        return rows
    except Exception as e:  # a crash in one unit is recorded, the campaign goes on (specs were
        # validated when the campaign was expanded, so a ConfigError here is a bug, not bad input)
        traceback.print_exc(file=sys.stderr)
        return [{"status": "failed", "reason": f"{type(e).__name__}: {e}"} for _ in unit]


def _prepare_out(out: Path, camp) -> bool:
    """True if ``out`` must be created; ConfigError for another campaign's file or a bad folder."""
    if out.exists():
        store.check_belongs(out, camp)
        return False
    _check_folder(out)
    return True


def _check_folder(out: Path) -> None:
    if not out.parent.is_dir():
        raise ConfigError(f"--out: folder {str(out.parent)!r} does not exist (or is not a folder)")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: folder {str(out.parent)!r} is not writable; choose another")


def _status_now(out: Path, camp):
    """The status array of ``out`` as it is (read only), all pending if it does not exist yet."""
    if out.exists():
        return store.check_belongs(out, camp)
    _check_folder(out)
    return np.zeros(len(camp.specs), dtype="i1")


def _lock(out: Path, n_runnable: int) -> lock.Lock:
    """Rank 0, before ``out`` is created or opened for writing: refuse a read-only file, take the lock."""
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"--out: {str(out)!r} is read-only; make it writable (chmod u+w {str(out)!r}) to run its "
                          f"{n_runnable} pending task(s), or choose another --out")
    return lock.acquire(out)


def _log(message: str) -> None:
    print(f"[qpnn-hpc] {message}", flush=True)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt while the run lasts, if it had the default action
    (a handler someone installed, e.g. submitit's, is kept)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _rows_kept(out: Path) -> int:
    try:
        c = store.status_counts(out)
    except (OSError, KeyError):
        return 0
    return c["done"] + c["failed"]


def run_campaign(campaign_file: str | Path, out: str | Path, batch: int | None = None, device: str = "auto",
                 progress: bool = True, writer: str = "auto", chains_over_ranks: bool = False,
                 tasks=None, retry_failed: bool = False) -> dict:
    """Run (or resume) a campaign into ``out``; returns the final status counts (rank 0).

    ``batch``: tasks per unit (default: the kind's). ``writer``: "auto" (mpio where h5py
    has MPI, else rank 0), "rank0" or "mpio". ``chains_over_ranks`` (kinds that spread
    over ranks): all ranks take every unit together. ``tasks``: run only these task
    indices (a shard, :mod:`qpnn_hpc.campaigns.shards`); the others stay as they are.
    Raises ConfigError for bad input (nothing written), KeyboardInterrupt on Ctrl-C or
    SIGTERM (after rank 0 printed how many rows the file keeps)."""
    r = parallel.ranks()
    with _sigterm_interrupts():
        try:
            return _run(r, campaign_file, Path(out), batch, device, progress, writer, chains_over_ranks, tasks,
                        retry_failed)
        except KeyboardInterrupt:
            if r.rank == 0:
                print(f"qpnn-hpc run: interrupted; {_rows_kept(Path(out))} rows kept in {out}; rerun the same "
                      "command to resume", file=sys.stderr, flush=True)
            raise


def _run(r, campaign_file, out: Path, batch, device, progress, writer, chains_over_ranks, tasks,
         retry_failed) -> dict:
    camp = files.load(campaign_file)
    kind = camp.plugin
    batch = kind.default_batch if batch is None else batch
    if batch < 1:
        raise ConfigError("--batch: must be >= 1")
    if chains_over_ranks and not kind.spreads_over_ranks:
        raise ConfigError(f"--chains-over-ranks: {kind.name} tasks do not spread over ranks; leave it out")
    mpio = store.use_mpio(writer, r.size)
    dev = parallel.on_every_rank(r.comm, lambda: parallel.pick_device(r, device))  # before any file

    def runnable(status):
        if tasks is not None:  # a shard: tasks outside it are not runnable here (-1)
            status = np.where(np.isin(np.arange(len(status)), np.asarray(list(tasks), dtype=int)), status, -1)
        return work_units(kind, camp.specs, status, batch, retry_failed)

    def headline(units):
        if progress and r.rank == 0:
            _log(f"{camp.name} ({kind.name}): {len(camp.specs)} tasks, {sum(len(u) for u in units)} to run in "
                 f"{len(units)} units; {r.size} rank(s), {'parallel HDF5' if mpio else 'rank-0 writer'}, "
                 f"device {dev}")

    units = runnable(parallel.agree(r.comm, lambda: _status_now(out, camp)))
    if not units:  # nothing to run: the file is not opened for writing, no lock is needed
        headline(units)
        counts = (store.status_counts(out) if out.exists() else {"pending": len(camp.specs), "done": 0, "failed": 0}) \
            if r.rank == 0 else {}
        if progress and r.rank == 0:
            _log(f"finished in 0.0 s: {counts}")
        return counts

    held = []

    def take():
        held.append(_lock(out, sum(len(u) for u in units)))
        return held[0].took_over
    took_over = parallel.agree(r.comm, take)
    try:
        if took_over and r.rank == 0:
            _log(f"took over the stale lock {lock.lock_path(out)} ({took_over})")
        return _run_locked(r, camp, kind, out, dev, mpio, progress, chains_over_ranks, runnable, headline)
    finally:
        if held:
            held[0].release()


def _run_locked(r, camp, kind, out, dev, mpio, progress, chains_over_ranks, runnable, headline) -> dict:
    if parallel.agree(r.comm, lambda: _prepare_out(out, camp)):
        shape = parallel.agree(r.comm, lambda: store.layout(camp))  # a kind's error reaches every rank
        if mpio:
            store.create(out, camp, r.comm, shape)
        elif r.rank == 0:
            store.create(out, camp, shape=shape)
    units = runnable(parallel.agree(r.comm, lambda: store.check_belongs(out, camp)))  # again, under the lock
    n_pending = sum(len(u) for u in units)
    headline(units)

    sink = store.Writer(out, r.comm) if mpio else (store.Writer(out) if r.rank == 0 else None)
    t0 = time.perf_counter()
    write = (lambda p, rank: sink.write(p[0], p[1], rank, p[2])) if sink is not None else None
    gather = parallel.Gather(r, write, mpio)
    spread = chains_over_ranks and r.size > 1
    schedule = range(len(units)) if spread else parallel.dynamic(len(units), r)
    every = max(1, len(units) // 20)
    try:
        for k in schedule:
            t = time.perf_counter()
            rows = _run_unit(kind, camp.specs, units[k], dev, r.comm if spread else None)
            wall = (time.perf_counter() - t) / len(units[k])
            if not spread or r.rank == 0:  # spread over ranks: every rank holds the rows
                for i, row in zip(units[k], rows):
                    gather.put((i, row, wall))
            gather.drain()
            if progress and r.rank == 0 and ((k + 1) % every == 0 or k + 1 == len(units)):
                _log(f"unit {k + 1}/{len(units)} taken; rank 0 wrote {gather.written} of {n_pending} rows; "
                     f"{time.perf_counter() - t0:.1f} s")
        gather.finish()
    finally:
        gather.stop()
        if sink is not None:
            sink.close()
    if r.rank == 0:  # the kind's measured worst case over the finished rows, as root attributes
        store.write_summary(out, kind)
    counts = store.status_counts(out) if r.rank == 0 else {}
    if progress and r.rank == 0:
        _log(f"finished in {time.perf_counter() - t0:.1f} s: {counts}")
    return counts
