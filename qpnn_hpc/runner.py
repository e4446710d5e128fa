"""Run a campaign: schedule its pending tasks over the MPI ranks and store the results.

``run_campaign(campaign_file, out)`` is collective: every rank of the MPI world calls
it (a plain process is a world of one). Steps:

1. every rank loads and expands the campaign (a bad file fails everywhere, nothing written);
2. rank 0 checks an existing ``out`` belongs to this campaign, or the file is created;
3. pending tasks (status 0) are grouped into work units of up to ``batch`` tasks that
   differ only in their seed (trained as one batched model); finished and failed
   tasks are never run again (resume);
4. units are taken dynamically (:func:`parallel.dynamic`); results are written by
   their own rank (parallel HDF5) or sent to rank 0, which writes them (serial h5py).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from . import campaign as campaign_mod
from . import parallel, results
from .config import ConfigError
from .trial import batch_key, build_system, failed_result, run_trials

def work_units(specs, status, batch: int) -> list[list[int]]:
    """Pending task indices grouped by batch key (in campaign order), chunks of <= batch."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        if status[i] == results.PENDING:
            groups.setdefault(batch_key(s), []).append(i)
    units = []
    for idx in groups.values():
        units.extend(idx[j:j + batch] for j in range(0, len(idx), batch))
    # longest first (LPT): the last units to finish are the short ones
    cost = {k: estimated_cost(specs[idx[0]]) for k, idx in groups.items()}  # one system build per group
    return sorted(units, key=lambda u: -len(u) * cost[batch_key(specs[u[0]])])


def estimated_cost(spec) -> float:
    """Relative training cost of a task: epochs x points x inputs, doubled for the
    gradient losses (qpnn, qpnn_ms: a second backward pass). Only orders the units."""
    dim = build_system(spec).dim
    return spec.train.epochs * spec.train.points * dim * (2 if spec.method != "mpnn" else 1)


def _run_unit(specs, unit, device, comm=None):
    try:
        return run_trials([specs[i] for i in unit], device, comm)
    except Exception as e:  # a crash in one unit is recorded, the campaign goes on (specs were
        # validated when the campaign was expanded, so a ConfigError here is a bug, not bad input)
        reason = f"{type(e).__name__}: {e}"
        traceback.print_exc(file=sys.stderr)
        return [failed_result(specs[i], reason) for i in unit]


def run_campaign(campaign_file: str | Path, out: str | Path, batch: int = 1, device: str = "auto",
                 progress: bool = True, writer: str = "auto", chains_over_ranks: bool = False,
                 tasks=None) -> dict:
    """Run (or resume) a campaign into ``out``; returns the final status counts (rank 0).

    ``writer``: "auto" (mpio where h5py has MPI, else rank 0), "rank0" or "mpio".
    ``chains_over_ranks``: instead of one unit per rank, all ranks take every unit
    together: rank 0 trains, the evaluation chain blocks (eval.chain_blocks) are spread
    over the ranks, rank 0 writes.
    ``tasks``: run only these task indices (a shard, :mod:`qpnn_hpc.shards`); the others stay pending."""
    if batch < 1:
        raise ConfigError("--batch: must be >= 1")
    r = parallel.ranks()
    camp = campaign_mod.load(campaign_file)
    out = Path(out)
    mpio = results.use_mpio(writer, r.size)

    def prepare():
        if out.exists():
            results.check_belongs(out, camp)
            return False
        if not out.parent.is_dir():
            raise ConfigError(f"--out: folder {str(out.parent)!r} does not exist (or is not a folder)")
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise ConfigError(f"--out: folder {str(out.parent)!r} is not writable; choose another")
        return True

    must_create = parallel.agree(r.comm, prepare)
    if must_create:
        if mpio:
            results.create(out, camp, r.comm)
        elif r.rank == 0:
            results.create(out, camp)
    status = parallel.agree(r.comm, lambda: results.check_belongs(out, camp))
    if tasks is not None:  # a shard: tasks outside it are not pending here (-1)
        status = np.where(np.isin(np.arange(len(status)), np.asarray(list(tasks), dtype=int)), status, -1)
    units = work_units(camp.specs, status, batch)
    n_pending = sum(len(u) for u in units)
    dev = parallel.pick_device(r, device)
    if progress and r.rank == 0:
        print(f"[qpnn-hpc] {camp.config.name}: {len(camp.specs)} tasks, {n_pending} pending in "
              f"{len(units)} units; {r.size} rank(s), {'parallel HDF5' if mpio else 'rank-0 writer'}, "
              f"device {dev}", flush=True)

    sink = results.Writer(out, r.comm) if mpio else (results.Writer(out) if r.rank == 0 else None)
    t0 = time.perf_counter()
    gather = parallel.Gather(r, (lambda p, rank: sink.write(*p, rank)) if sink is not None else None,
                             mpio, n_pending)
    schedule = range(len(units)) if chains_over_ranks else parallel.dynamic(len(units), r)
    try:
        for k in schedule:
            res = _run_unit(camp.specs, units[k], dev, r.comm if chains_over_ranks else None)
            if not chains_over_ranks or r.rank == 0:  # with chains over ranks all hold the results
                for i, result in zip(units[k], res):
                    gather.put((i, result))
            gather.drain()
            if progress and r.rank == 0:
                print(f"[qpnn-hpc] unit {k + 1}/{len(units)} taken; rank 0 wrote {gather.written} of "
                      f"{n_pending} pending rows; {time.perf_counter() - t0:.1f} s", flush=True)
        gather.finish()
    finally:
        if sink is not None:
            sink.close()
    counts = results.status_counts(out) if r.rank == 0 else {}
    if progress and r.rank == 0:
        print(f"[qpnn-hpc] finished in {time.perf_counter() - t0:.1f} s: {counts}", flush=True)
    return counts
