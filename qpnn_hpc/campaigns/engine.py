"""Run a campaign of any kind: schedule its pending tasks over the MPI ranks, store the rows.

``run_campaign(campaign_file, out)`` is collective: every rank of the MPI world calls
it (a plain process is a world of one). Steps:

1. every rank loads and expands the campaign (a bad file fails everywhere, nothing written);
2. rank 0 checks an existing ``out`` belongs to this campaign, or the file is created;
3. pending tasks are grouped into work units of up to ``batch`` tasks with one batch key
   (:attr:`Kind.batch_key`: trials that differ only in their seed train as one batched
   model); finished tasks are never run again (resume), failed ones only with
   ``retry_failed``;
4. units are taken dynamically, longest first (:func:`qpnn_hpc.parallel.dynamic`); rows are
   written by their own rank (parallel HDF5) or sent to rank 0, which writes them.

A unit that raises is recorded as failed rows with the reason, and the campaign goes on.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import numpy as np

from qpnn_hpc import parallel
from qpnn_hpc.campaigns import files, store
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
    import os
    if out.exists():
        store.check_belongs(out, camp)
        return False
    if not out.parent.is_dir():
        raise ConfigError(f"--out: folder {str(out.parent)!r} does not exist (or is not a folder)")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: folder {str(out.parent)!r} is not writable; choose another")
    return True


def _log(message: str) -> None:
    print(f"[qpnn-hpc] {message}", flush=True)


def run_campaign(campaign_file: str | Path, out: str | Path, batch: int | None = None, device: str = "auto",
                 progress: bool = True, writer: str = "auto", chains_over_ranks: bool = False,
                 tasks=None, retry_failed: bool = False) -> dict:
    """Run (or resume) a campaign into ``out``; returns the final status counts (rank 0).

    ``batch``: tasks per unit (default: the kind's). ``writer``: "auto" (mpio where h5py
    has MPI, else rank 0), "rank0" or "mpio". ``chains_over_ranks`` (kinds that spread
    over ranks): all ranks take every unit together. ``tasks``: run only these task
    indices (a shard, :mod:`qpnn_hpc.campaigns.shards`); the others stay as they are."""
    r = parallel.ranks()
    camp = files.load(campaign_file)
    kind = camp.plugin
    batch = kind.default_batch if batch is None else batch
    if batch < 1:
        raise ConfigError("--batch: must be >= 1")
    if chains_over_ranks and not kind.spreads_over_ranks:
        raise ConfigError(f"--chains-over-ranks: {kind.name} tasks do not spread over ranks; leave it out")
    out = Path(out)
    mpio = store.use_mpio(writer, r.size)

    if parallel.agree(r.comm, lambda: _prepare_out(out, camp)):
        shape = parallel.agree(r.comm, lambda: store.layout(camp))  # a kind's error reaches every rank
        if mpio:
            store.create(out, camp, r.comm, shape)
        elif r.rank == 0:
            store.create(out, camp, shape=shape)
    status = parallel.agree(r.comm, lambda: store.check_belongs(out, camp))
    if tasks is not None:  # a shard: tasks outside it are not runnable here (-1)
        status = np.where(np.isin(np.arange(len(status)), np.asarray(list(tasks), dtype=int)), status, -1)
    units = work_units(kind, camp.specs, status, batch, retry_failed)
    n_pending = sum(len(u) for u in units)
    dev = parallel.pick_device(r, device)
    if progress and r.rank == 0:
        _log(f"{camp.name} ({kind.name}): {len(camp.specs)} tasks, {n_pending} to run in {len(units)} units; "
             f"{r.size} rank(s), {'parallel HDF5' if mpio else 'rank-0 writer'}, device {dev}")

    sink = store.Writer(out, r.comm) if mpio else (store.Writer(out) if r.rank == 0 else None)
    t0 = time.perf_counter()
    write = (lambda p, rank: sink.write(p[0], p[1], rank, p[2])) if sink is not None else None
    gather = parallel.Gather(r, write, mpio, n_pending)
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
        if sink is not None:
            sink.close()
    counts = store.status_counts(out) if r.rank == 0 else {}
    if progress and r.rank == 0:
        _log(f"finished in {time.perf_counter() - t0:.1f} s: {counts}")
    return counts
