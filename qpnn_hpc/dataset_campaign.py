"""Seed 002's 1D datasets as an MPI campaign: one HDF5 file per dataset, resumable.

    qpnn-hpc dataset jobs/dataset1d.toml --out data/ [--writer auto|rank0|mpio]
    mpiexec -n 4 qpnn-hpc dataset jobs/dataset1d.toml --out data/

:func:`run_dataset_campaign` is collective (every rank of the MPI world calls it; a plain
process is a world of one). Steps:

1. every rank reads the config file (:class:`DatasetCampaignConfig`); a bad file fails
   everywhere before anything is written;
2. rank 0 checks every existing ``<out>/<dataset>.h5`` was made from the same resolved
   config (attribute ``config_hash``), refusing it untouched otherwise, and only then
   creates the missing files (built as ``<name>.h5.tmp`` and renamed);
3. the systems not yet done (status pending or failed) of all datasets are the work
   units, taken dynamically (:func:`qpnn_hpc.parallel.dynamic`);
4. each result is written by its own rank (``driver='mpio'``, where h5py has MPI) or sent
   to rank 0, which writes it; the row's status is written last.

File layout: that of :func:`qpnn_hpc.dataset1d.write_dataset` (``/x``; ``/train`` and
``/test`` with ``V``, ``n1``, ``n2``, the scalars ``E1``, ``E2``, ``E_V``, ``T``, ``A``,
``Eg``, ``E_V2``, ``T2``, ``U2``, ``parameters``, ``spec_id``; root attributes ``kind``,
``units``, ``grid``, ``stencil``, ``gauge`` ...), plus

* per split: ``status`` (int8: 0 pending, 1 done, 2 failed), ``reason`` (why a system
  failed), ``rank`` (MPI rank that solved it), ``finished`` (unix time), ``wall_time`` (s);
* root attributes ``format``, ``config`` (this dataset's resolved config, JSON),
  ``config_hash``, ``versions`` (JSON), ``created``.

Every dataset is contiguous and allocated at creation (``V``, ``parameters`` and
``spec_id`` are written then), so a row write changes raw data only: a campaign killed
at any moment leaves readable files in which every row marked done is complete. The
numbers do not depend on the rank count (the solver is deterministic per system).

Threads: the solver wants one BLAS thread per rank; the ``dataset`` command sets
``OMP_NUM_THREADS`` (and OpenBLAS's, MKL's) to 1 unless already set. This module imports
numpy, h5py and MPI only when a campaign runs, so that the setting takes effect.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, canonical_json, check, field, from_dict, read_toml, spec_hash, to_dict

FORMAT = "qpnn_hpc.dataset1d/1"
KINDS = ("atoms", "molecules")      # = dataset1d.KINDS (kept here so the CLI loads no numpy)
SPLITS = ("train", "test")          # = dataset1d.SPLITS
PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}
STATUS_DESCRIPTIONS = {
    "status": "0 pending, 1 done, 2 failed (written last: a row marked done is complete)",
    "reason": "why the system failed (empty when done)",
    "rank": "MPI rank that solved the system (-1: not yet)",
    "finished": "unix time the row was written (s)",
    "wall_time": "wall time of solve_system for this system (s)",
}


# ---------------------------------------------------------------------------------- config
# Defaults are seed 002's (qpnn_hpc.dataset1d.DEFAULT_*, *_TRAIN_POINTS; a test checks they agree).

@dataclass(frozen=True)
class GridConfig:
    """The real-space grid shared by all systems (seed 002: 14 bohr, 12 points per bohr, 13-point stencil)."""

    box: float = field(14.0, help="box length (bohr): x in [-box/2, box/2], hard walls")
    points_per_bohr: float = field(12.0, help="grid points per bohr; box * points_per_bohr must be an integer")
    stencil: int = field(13, help="finite-difference points of the second derivative: 3, 5, 7, 9, 11 or 13")

    def __post_init__(self):
        from .dataset1d import SystemSpec  # its checks name the field and the fix
        SystemSpec("atom", 1.0, 1.0, box=self.box, points_per_bohr=self.points_per_bohr, stencil=self.stencil)


def _check_train_points(n: int, name: str) -> None:
    check(n >= 2, name, f"must be >= 2 (the test split takes the {n} - 1 midpoints), got {n}")


@dataclass(frozen=True)
class AtomsConfig:
    """V = -Z/(|x| + alpha), Z in [0.5, 2], alpha in [0.65, 1] (seed 002, eq. 1)."""

    train_points: int = field(10, help="values of Z and of alpha: train = the n x n grid, test = the "
                                       "(n-1) x (n-1) cell midpoints (seed 002: 10, i.e. 100 and 81)")

    def __post_init__(self):
        _check_train_points(self.train_points, "atoms.train_points")


@dataclass(frozen=True)
class MoleculesConfig:
    """Two wells at +-r/2, Z = 1, alpha = 0.75, r in [2, 6] bohr (seed 002, eq. 2)."""

    train_points: int = field(50, help="values of r: train = n values, test = the n - 1 midpoints "
                                       "(seed 002: 50 and 49)")

    def __post_init__(self):
        _check_train_points(self.train_points, "molecules.train_points")


@dataclass(frozen=True)
class DatasetCampaignConfig:
    """A dataset campaign file (jobs/dataset1d.toml)."""

    datasets: tuple[str, ...] = field(KINDS, help="datasets to generate, one file <name>.h5 each: "
                                                  "'atoms', 'molecules'")
    grid: GridConfig = field(default_factory=GridConfig, help="[grid] table: box, points_per_bohr, stencil")
    atoms: AtomsConfig = field(default_factory=AtomsConfig, help="[atoms] table: train_points")
    molecules: MoleculesConfig = field(default_factory=MoleculesConfig, help="[molecules] table: train_points")

    def __post_init__(self):
        check(len(self.datasets) > 0, "datasets", f"empty: give at least one of {list(KINDS)}")
        for d in self.datasets:
            check(d in KINDS, "datasets", f"unknown dataset {d!r}; use any of {list(KINDS)}")
        check(len(set(self.datasets)) == len(self.datasets), "datasets", f"{list(self.datasets)} "
              "names a dataset twice; list each once")

    def train_points(self, kind: str) -> int:
        return getattr(self, kind).train_points


def load(path: str | Path) -> DatasetCampaignConfig:
    """Read a dataset campaign TOML file; every error names the field and the fix."""
    path = Path(path)
    data = read_toml(path, "config")
    try:
        return from_dict(DatasetCampaignConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{path.name}: {e}") from None


# ------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class DatasetPlan:
    """One dataset of the campaign: its systems per split, resolved config and file."""

    kind: str
    specs: dict            # split -> tuple[SystemSpec, ...]
    resolved: dict         # everything that defines the file's contents
    path: Path

    @property
    def hash(self) -> str:
        return spec_hash(self.resolved)


def plan(config: DatasetCampaignConfig, out_dir: str | Path) -> list[DatasetPlan]:
    """The datasets of ``config`` with their systems (deterministic; every rank computes it)."""
    from . import dataset1d as d1

    out = []
    g = config.grid
    for kind in config.datasets:
        n = config.train_points(kind)
        specs = {s: d1.dataset_specs(kind, s, g.box, g.points_per_bohr, g.stencil, n) for s in SPLITS}
        if kind == "atoms":
            params = {"Z_range": list(d1.ATOM_Z_RANGE), "alpha_range": list(d1.ATOM_ALPHA_RANGE)}
        else:
            params = {"Z": d1.MOLECULE_Z, "alpha": d1.MOLECULE_ALPHA, "r_range": list(d1.MOLECULE_R_RANGE)}
        resolved = {"format": FORMAT, "kind": kind, "grid": to_dict(g), "train_points": n,
                    "test_points": n - 1, "parameters": params,
                    # the systems themselves: a change in how specs are built changes the identity
                    "systems": {s: spec_hash([x.spec_id() for x in specs[s]]) for s in SPLITS}}
        out.append(DatasetPlan(kind, specs, resolved, Path(out_dir) / f"{kind}.h5"))
    return out


# ------------------------------------------------------------------------------ the files
def create(p: DatasetPlan, comm=None) -> None:
    """Create the file of one dataset, every row pending (collectively when ``comm`` is
    given: every rank of ``comm`` calls this). Built as ``<path>.tmp`` and renamed."""
    import h5py
    import numpy as np

    from . import dataset1d as d1
    from .results import _dataset, versions

    tmp = p.path.with_name(p.path.name + ".tmp")
    rank = 0 if comm is None else comm.Get_rank()
    if rank == 0 and tmp.exists():
        tmp.unlink()
    if comm is not None:
        comm.Barrier()
    first = p.specs["train"][0]
    kw = {"driver": "mpio", "comm": comm} if comm is not None else {}
    with h5py.File(tmp, "w", **kw) as f:
        f.attrs["kind"] = p.kind
        for key, value in d1._grid_attrs(first).items():
            f.attrs[key] = value
        f.attrs["format"] = FORMAT
        f.attrs["config"] = canonical_json(p.resolved)
        f.attrs["config_hash"] = p.hash
        f.attrs["versions"] = json.dumps(versions())
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        x = _dataset(f, "x", (first.points,), "f8")
        x.attrs["description"] = "grid points (bohr)"
        writes = [(x, first.grid())]
        for split, specs in p.specs.items():
            g = f.create_group(split)
            n, m = len(specs), first.points
            for key in d1.PROFILE_KEYS:
                _dataset(g, key, (n, m), "f8", np.nan)
            for key in d1.SCALAR_KEYS:
                _dataset(g, key, (n,), "f8", np.nan)
            _dataset(g, "parameters", (n, 3), "f8", np.nan)
            g["parameters"].attrs["columns"] = ",".join(d1.PARAMETER_COLUMNS)
            ids = np.array([s.spec_id() for s in specs], dtype="S")
            _dataset(g, "spec_id", (n,), ids.dtype)
            _dataset(g, "status", (n,), "i1", PENDING)
            _dataset(g, "reason", (n,), "S256")
            _dataset(g, "rank", (n,), "i4", -1)
            _dataset(g, "finished", (n,), "f8", np.nan)
            _dataset(g, "wall_time", (n,), "f8", np.nan)
            for key, text in {**d1.DESCRIPTIONS, **STATUS_DESCRIPTIONS}.items():
                g[key].attrs["description"] = text
            g.attrs["count"] = n
            g.attrs["specs_json"] = canonical_json([dataclasses.asdict(s) for s in specs])
            # the inputs of every row (known before solving)
            writes += [(g["V"], np.stack([s.potential() for s in specs])),
                       (g["parameters"], np.array([[s.Z, s.alpha, s.r] for s in specs])),
                       (g["spec_id"], ids)]
        if rank == 0:  # raw data: independent writes by one rank
            for dset, data in writes:
                dset[...] = data
    if comm is not None:
        comm.Barrier()
    if rank == 0:
        os.replace(tmp, p.path)
    if comm is not None:
        comm.Barrier()


def check_belongs(p: DatasetPlan) -> dict:
    """Status arrays (split -> int8 array) of the existing file of ``p``; ConfigError if the
    file is not a dataset file of this very config (it is then left untouched)."""
    import h5py

    try:
        with h5py.File(p.path, "r") as f:
            fmt, h = f.attrs.get("format"), f.attrs.get("config_hash")
            status = {s: f[f"{s}/status"][:] for s in SPLITS if f"{s}/status" in f}
    except OSError as e:
        raise ConfigError(f"--out: {str(p.path)!r} exists but is not a readable HDF5 file ({e}); "
                          "choose another output folder or delete it") from None
    if fmt != FORMAT or h != p.hash or len(status) != len(SPLITS):
        what = f"config_hash {h}" if h else "not a qpnn_hpc dataset file"
        raise ConfigError(f"--out: {str(p.path)!r} belongs to another configuration ({what}; this config "
                          f"gives {p.hash}); choose another output folder or delete the file")
    return status


def status_counts(path: str | Path) -> dict[str, int]:
    """Systems pending / done / failed in one dataset file (both splits)."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        status = np.concatenate([f[f"{s}/status"][:] for s in SPLITS])
    return {name: int((status == code).sum()) for code, name in STATUS_NAMES.items()}


class _Sink:
    """Open dataset files that take finished rows: this rank's rows through mpio (all
    ranks of ``comm`` open and close it together), else serial (rank 0 only)."""

    def __init__(self, plans, comm=None):
        from .results import _open
        self.files = {p.kind: _open(p.path, comm) for p in plans}
        self.mpio = comm is not None

    def write(self, kind: str, split: str, i: int, res: dict, rank: int, wall: float) -> None:
        from . import dataset1d as d1

        f = self.files[kind]
        g = f[split]
        if res.get("error") is None:
            for key in d1.PROFILE_KEYS:
                g[key][i, :] = res[key]
            for key in d1.SCALAR_KEYS:
                g[key][i] = res[key]
            g["reason"][i] = b""
        else:
            g["reason"][i] = res["error"].encode()[:255]
        g["rank"][i] = rank
        g["finished"][i] = time.time()
        g["wall_time"][i] = wall
        if not self.mpio:
            f.flush()
        g["status"][i] = DONE if res.get("error") is None else FAILED  # last: a done row is complete
        if not self.mpio:
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _solve(spec) -> dict:
    from . import dataset1d as d1
    try:
        res = d1.solve_system(spec)
        check(res["spec_id"] == spec.spec_id(), "spec_id", "result does not belong to its spec")
        return res
    except Exception as e:  # a failed system is recorded (and retried by the next run)
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(e).__name__}: {e}"}


# ------------------------------------------------------------------------------ the run
def run_dataset_campaign(toml_path: str | Path, out_dir: str | Path, writer: str = "auto",
                         progress: bool = True) -> dict:
    """Generate (or resume) the datasets of ``toml_path`` into ``out_dir``; collective.

    ``writer``: "auto" (mpio where h5py has MPI, else rank 0), "rank0" or "mpio".
    Systems already done are not solved again; pending and failed ones are.
    Returns, on rank 0, ``{dataset: {"pending": n, "done": n, "failed": n}}`` ({} elsewhere).
    """
    config = load(toml_path)  # before MPI and h5py: a bad file fails fast, nothing written
    from . import parallel, results

    r = parallel.ranks()
    mpio = results.use_mpio(writer, r.size)
    out_dir = Path(out_dir)
    plans = plan(config, out_dir)

    def prepare():
        check(not out_dir.exists() or out_dir.is_dir(), "--out", f"{str(out_dir)!r} is a file; give a folder")
        for p in plans:  # every existing file is checked before anything is created
            if p.path.exists():
                check_belongs(p)
        out_dir.mkdir(parents=True, exist_ok=True)
        return [not p.path.exists() for p in plans]

    for p, must_create in zip(plans, parallel.agree(r.comm, prepare)):
        if must_create and (mpio or r.rank == 0):
            create(p, r.comm if mpio else None)
    status = parallel.agree(r.comm, lambda: [check_belongs(p) for p in plans])
    units = [(d, split, i) for d, p in enumerate(plans) for split in SPLITS
             for i in range(len(p.specs[split])) if status[d][split][i] != DONE]
    total = sum(len(p.specs[s]) for p in plans for s in SPLITS)
    if progress and r.rank == 0:
        print(f"[qpnn-hpc dataset] {', '.join(p.kind for p in plans)} in {out_dir}: {total} systems, "
              f"{len(units)} to solve; {r.size} rank(s), {'parallel HDF5' if mpio else 'rank-0 writer'}",
              flush=True)

    sink = _Sink(plans, r.comm) if mpio else (_Sink(plans) if r.rank == 0 else None)
    t0 = time.perf_counter()
    every = max(1, len(units) // 10)

    def write(payload, rank):
        k, res, wall = payload
        d, split, i = units[k]
        sink.write(plans[d].kind, split, i, res, rank, wall)

    gather = parallel.Gather(r, write if sink is not None else None, mpio, len(units))
    try:
        for k in parallel.dynamic(len(units), r):
            d, split, i = units[k]
            t = time.perf_counter()
            res = _solve(plans[d].specs[split][i])
            gather.put((k, res, time.perf_counter() - t))
            gather.drain()
            if progress and r.rank == 0 and (k + 1) % every == 0:
                print(f"[qpnn-hpc dataset] system {k + 1}/{len(units)} taken; rank 0 wrote {gather.written}; "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
        gather.finish()
    finally:
        if sink is not None:
            sink.close()
    counts = {p.kind: status_counts(p.path) for p in plans} if r.rank == 0 else {}
    if progress and r.rank == 0:
        print(f"[qpnn-hpc dataset] finished in {time.perf_counter() - t0:.1f} s: " +
              "; ".join(f"{p.path.name} {counts[p.kind]}" for p in plans), flush=True)
    return counts


# ------------------------------------------------------------------------------ the CLI
def _cli(args) -> int:
    if "numpy" not in sys.modules:  # one BLAS thread per rank unless told otherwise
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    counts = run_dataset_campaign(args.config, args.out, writer=args.writer, progress=not args.quiet)
    failed = sum(c["failed"] for c in counts.values())
    if failed:
        print(f"qpnn-hpc dataset: {failed} system(s) failed (see 'reason' in the files); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers) -> None:
    """Register ``qpnn-hpc dataset CONFIG --out DIR [--writer auto|rank0|mpio] [--quiet]``."""
    p = subparsers.add_parser("dataset", help="generate seed 002's 1D datasets (under mpiexec: over all "
                                              "ranks; resumes an interrupted run)")
    p.add_argument("config", help="dataset campaign TOML file (jobs/dataset1d.toml)")
    p.add_argument("--out", required=True, help="output folder: one <dataset>.h5 each (created, or resumed)")
    p.add_argument("--writer", default="auto", choices=["auto", "rank0", "mpio"],
                   help="auto: parallel HDF5 (mpio) where h5py has MPI, else rank 0 gathers and writes")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(fn=_cli)
