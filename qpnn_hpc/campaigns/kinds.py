"""Task kinds: what the campaign engine needs to know about one kind of work, and nothing else.

A kind is one module (in its science's subpackage) with a module-level ``KIND`` object of
class :class:`Kind`, registered by name in :data:`REGISTRY`. The engine does everything
else once, for every kind: campaign files, the results file and its ownership check,
scheduling over MPI ranks, both writers, resume, failure rows, progress, status, shards,
merge, submit and job records.

Adding a kind = one module defining ``KIND`` + one line in :data:`REGISTRY`.

What a kind gives:

* ``Config``: the frozen dataclass of its campaign file (everything but ``kind = ...``);
  ``expand(config, base) -> (name, specs)``: the tasks, in a fixed order; ``base`` is the
  campaign file's folder (for relative paths);
* ``batch_key(spec)``: tasks with equal keys may run as one batched unit;
  ``cost(spec)``: relative cost, only orders the units (longest first);
* ``run(specs, device, comm) -> rows``: pure; one dict per spec, in order, with ``status``
  ("done" or "failed"), ``reason`` and one value per result column (``comm`` only for kinds
  with ``spreads_over_ranks``);
* ``labels(config, specs)``: columns known before running (written at creation under /tasks:
  names a physicist filters by, e.g. system and method), ``columns(specs)``: the result
  columns (under /results), each a :class:`Column`;
* ``describe(table, i)``: a short label of row i for ``status``; ``report(path, table,
  out)``: report.md and figures from the file's table (``store.read_table``) into ``out``;
  ``attrs(specs)``: root attributes that describe the file (grid, gauge, ...);
  ``summary(table)``: root attributes (floats, named in ``summary_names``) measured over the
  finished rows, e.g. the worst grid error: created NaN, rewritten at the end of every run and
  merge (:func:`qpnn_hpc.campaigns.store.write_summary`).

This module imports nothing heavy (the CLI reads :data:`REGISTRY` before numpy loads).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from qpnn_hpc.config import ConfigError

#: kind name -> (module defining KIND, BLAS threads per rank or None for the device default).
#: The solver of the 1D datasets wants one BLAS thread per rank: the CLI sets
#: OMP_NUM_THREADS (and OpenBLAS's, MKL's) to 1 before numpy loads, unless already set.
REGISTRY = {
    "trial": ("qpnn_hpc.inverse.kind", None),
    "solve1d": ("qpnn_hpc.exact1d.kind", 1),
    "functional": ("qpnn_hpc.functionals.kind", None),
}
DEFAULT = "trial"  # a campaign file without ``kind = ...``


@dataclass(frozen=True)
class Column:
    """One result column: ``shape`` is per row (() a scalar; (n,) a NaN-padded curve).
    ``rows``: the task indices that have it (None: every task); the store then keeps only
    those rows, and ``/results/<name>_index`` maps a task to its row (-1: none)."""
    name: str
    dtype: str = "f8"
    shape: tuple = ()
    units: str = ""
    description: str = ""
    rows: Optional[tuple] = None


@dataclass(frozen=True)
class Kind:
    name: str
    Config: type
    expand: Callable                       # (config, base: Path) -> (name, specs)
    batch_key: Callable                    # spec -> str
    cost: Callable                         # spec -> float
    run: Callable                          # (specs, device, comm) -> list[dict]
    labels: Callable                       # (config, specs) -> dict[str, np.ndarray]
    columns: Callable                      # specs -> list[Column]
    describe: Callable                     # (table, i) -> str
    report: Optional[Callable] = None      # (results path, table, out folder) -> report.md path
    attrs: Optional[Callable] = None       # specs -> extra root attributes describing the file
    default_batch: int = 1                 # tasks per unit when --batch is not given
    spreads_over_ranks: bool = False       # run(..., comm) can spread one unit over all ranks
    what: str = "task"                     # what one task is called in progress lines
    libraries: tuple = ("torch",)          # packages beyond numpy/scipy/h5py/MPI whose versions the file records
    summary: Optional[Callable] = None     # table -> {name: float}: root attributes of the measured worst
    summary_names: tuple = ()              # case, created NaN, rewritten when a run or a merge ends


def get(name: Any) -> Kind:
    """The kind registered as ``name``; ConfigError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError(f"kind: unknown {name!r}; valid kinds are: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name][0]).KIND


def blas_threads(name: str) -> Optional[int]:
    """BLAS threads per rank a kind wants (None: the device default); no import."""
    return REGISTRY.get(name, (None, None))[1]
