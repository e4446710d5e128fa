"""One HDF5 results file per campaign: layout, creation, row writes, reading.

Layout (row i = task i of the expanded campaign; every dataset exists from the start):

    /                 attrs: format, units, campaign (resolved, JSON), campaign_hash,
                             campaign_name, n_tasks, versions (JSON), created
    /tasks/id         (n,)    S16     task id (hash of the canonical spec)
    /tasks/spec       (n,)    S<L>    the task spec as JSON
    /tasks/system     (n,)    S64     system name;   /tasks/method (n,) S16
    /tasks/status     (n,)    int8    0 pending, 1 done, 2 failed
    /tasks/reason     (n,)    S256    why a task failed
    /tasks/rank       (n,)    int32   MPI rank that ran it
    /tasks/finished   (n,)    float64 unix time the row was completed
    /results/<scalar> (n,)    float64 energy, energy_metropolis, energy_err, energy_exact, eps,
                                      acceptance, rhat, anchor_value, wall_time
    /results/loss_curve (n, E_max), /results/grid, potential, potential_true (n, G_max), NaN-padded
    /results/anchor   (n, 3)  float64 r0, NaN-padded

Crash safety: the file is built under a temporary name and renamed into place; all
datasets are contiguous and allocated at creation, so later writes touch raw data
only (no metadata); a row's status is written last. A process killed at any moment
leaves a readable file in which every row marked done is complete.

Writers: with parallel h5py (``h5py.get_config().mpi``) every rank opens the file with
driver='mpio' and writes its own rows (independent raw-data writes); otherwise rank 0
writes everything it gathers. The layout is the same either way.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import h5py
import numpy as np

from .config import ConfigError

FORMAT = "qpnn_hpc.results/1"
PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}
SCALARS = ("energy", "energy_metropolis", "energy_err", "energy_exact", "eps", "acceptance", "rhat",
           "anchor_value", "wall_time")
UNITS = {"energy": "Hartree", "energy_metropolis": "Hartree", "energy_err": "Hartree",
         "energy_exact": "Hartree", "eps": "Hartree", "anchor_value": "Hartree", "potential": "Hartree",
         "potential_true": "Hartree", "grid": "bohr", "anchor": "bohr", "wall_time": "s",
         "loss_curve": "Hartree^2/bohr^2 (qpnn, qpnn_ms) or Hartree (mpnn)", "acceptance": "1", "rhat": "1"}


def has_parallel_hdf5() -> bool:
    return bool(h5py.get_config().mpi)


def use_mpio(writer: str, n_ranks: int) -> bool:
    """Whether ranks write their own rows with driver='mpio' ("auto": where h5py has MPI),
    rather than rank 0 writing what it gathers ("rank0"). One rank never needs mpio."""
    if writer not in ("auto", "rank0", "mpio"):
        raise ConfigError(f"--writer: unknown {writer!r}; use auto, rank0 or mpio")
    if writer == "mpio" and not has_parallel_hdf5():
        raise ConfigError("--writer: mpio needs h5py built with MPI (h5py.get_config().mpi is False); "
                          "use --writer rank0 or build h5py against parallel HDF5 (README, cluster set-up)")
    return (writer == "mpio" or (writer == "auto" and has_parallel_hdf5())) and n_ranks > 1


def versions() -> dict:
    import torch
    from . import __version__
    out = {"qpnn_hpc": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
           "parallel_hdf5": has_parallel_hdf5()}
    try:
        import mpi4py
        from mpi4py import MPI
        out["mpi4py"] = mpi4py.__version__
        out["mpi"] = MPI.Get_library_version().splitlines()[0].strip()
    except Exception:  # pragma: no cover - mpi4py is a dependency, but report what is there
        out["mpi4py"] = None
    return out


def _fapl(comm=None):
    """File access: no sieve buffer (each raw write goes straight to the OS), mpio if comm."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    if comm is not None:
        from mpi4py import MPI
        fapl.set_fapl_mpio(comm, MPI.INFO_NULL)
    return fapl


def _open(path, comm=None) -> h5py.File:
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=_fapl(comm))
    return h5py.File(fid)


def _dataset(group, name, shape, dtype, fill=None):
    """Contiguous dataset allocated at creation (so later writes change no metadata)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    if fill is not None:
        dcpl.set_fill_value(np.array(fill, dtype=dtype))
    return group.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)


def _sizes(campaign) -> tuple[int, int]:
    epochs = max(s.train.epochs for s in campaign.specs)
    grid = max(s.eval.grid_points for s in campaign.specs)
    return epochs, grid


def create(path: str | Path, campaign, comm=None) -> None:
    """Create the results file for ``campaign`` (collectively when ``comm`` is given:
    every rank of ``comm`` must call this). Built as ``path.tmp`` and renamed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    rank = 0 if comm is None else comm.Get_rank()
    if rank == 0 and tmp.exists():
        tmp.unlink()
    if comm is not None:
        comm.Barrier()
    n = len(campaign.specs)
    epochs, grid = _sizes(campaign)
    spec_json = [s.to_json().encode() for s in campaign.specs]
    L = max(len(s) for s in spec_json)
    kw = {"driver": "mpio", "comm": comm} if comm is not None else {}
    with h5py.File(tmp, "w", **kw) as f:
        f.attrs["format"] = FORMAT
        f.attrs["units"] = json.dumps(UNITS)
        f.attrs["campaign"] = campaign.resolved_json()
        f.attrs["campaign_hash"] = campaign.hash
        f.attrs["campaign_name"] = campaign.config.name
        f.attrs["n_tasks"] = n
        # attribute values must be the same on every rank of a collective create: rank 0's
        stamp = (json.dumps(versions()), time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        f.attrs["versions"], f.attrs["created"] = comm.bcast(stamp, root=0) if comm is not None else stamp
        t = f.create_group("tasks")
        r = f.create_group("results")
        ds = {
            "id": _dataset(t, "id", (n,), "S16"),
            "spec": _dataset(t, "spec", (n,), f"S{L}"),
            "system": _dataset(t, "system", (n,), "S64"),
            "method": _dataset(t, "method", (n,), "S16"),
        }
        _dataset(t, "status", (n,), "i1", PENDING)
        _dataset(t, "reason", (n,), "S256")
        _dataset(t, "rank", (n,), "i4", -1)
        _dataset(t, "finished", (n,), "f8", np.nan)
        for name in SCALARS:
            _dataset(r, name, (n,), "f8", np.nan)
        _dataset(r, "loss_curve", (n, epochs), "f8", np.nan)
        for name in ("grid", "potential", "potential_true"):
            _dataset(r, name, (n, grid), "f8", np.nan)
        _dataset(r, "anchor", (n, 3), "f8", np.nan)
        for name, d in r.items():
            if name in UNITS:
                d.attrs["units"] = UNITS[name]
        if rank == 0:  # raw data: independent write by one rank
            ds["id"][:] = np.array([s.id.encode() for s in campaign.specs], dtype="S16")
            ds["spec"][:] = np.array(spec_json, dtype=f"S{L}")
            ds["system"][:] = np.array([s.system["name"].encode() for s in campaign.specs], dtype="S64")
            ds["method"][:] = np.array([s.method.encode() for s in campaign.specs], dtype="S16")
    if comm is not None:
        comm.Barrier()
    if rank == 0:
        os.replace(tmp, path)
    if comm is not None:
        comm.Barrier()


def check_belongs(path: str | Path, campaign) -> np.ndarray:
    """Status array of an existing results file; ConfigError if it is another campaign's."""
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            h = f.attrs.get("campaign_hash")
            status = f["tasks/status"][:] if "tasks/status" in f else None
    except OSError as e:
        raise ConfigError(f"--out: {str(path)!r} exists but is not a readable HDF5 file ({e}); "
                          "choose another output path") from None
    if fmt != FORMAT or h != campaign.hash or status is None:
        raise ConfigError(f"--out: {str(path)!r} belongs to another campaign "
                          f"({f'campaign_hash {h}' if h else 'not a qpnn_hpc results file'}, this one is "
                          f"{campaign.hash}); choose another output path or delete it")
    return status


class Writer:
    """Writes finished rows. ``comm`` given: this rank's rows through mpio (all ranks
    of ``comm`` construct and close it together); else a serial writer (rank 0)."""

    def __init__(self, path: str | Path, comm=None):
        self.f = _open(path, comm)
        self.mpio = comm is not None

    def write(self, index: int, result, rank: int) -> None:
        f = self.f
        r = f["results"]
        for name in SCALARS:
            r[name][index] = getattr(result, name)
        curve = np.asarray(result.loss_curve, dtype=np.float64)
        r["loss_curve"][index, : curve.size] = curve
        for name in ("grid", "potential", "potential_true"):
            v = np.asarray(getattr(result, name), dtype=np.float64)
            r[name][index, : v.size] = v
        a = np.asarray(result.anchor, dtype=np.float64)
        r["anchor"][index, : a.size] = a
        t = f["tasks"]
        t["reason"][index] = result.reason.encode()[:255].decode("utf-8", "ignore").encode()  # whole characters
        t["rank"][index] = rank
        t["finished"][index] = time.time()
        if not self.mpio:
            f.flush()
        # the status last: a row marked done is complete
        t["status"][index] = DONE if result.status == "done" else FAILED
        if not self.mpio:
            f.flush()

    def close(self) -> None:
        self.f.close()


def read_table(path: str | Path) -> dict:
    """Everything in a results file as numpy arrays and decoded strings (for reports)."""
    with h5py.File(path, "r") as f:
        out = {k: f.attrs[k] for k in f.attrs}
        for g in ("tasks", "results"):
            for name, d in f[g].items():
                out[name] = d[...]
    for name in ("id", "system", "method", "reason", "spec"):
        out[name] = np.array([b.decode("utf-8", "replace") for b in out[name]])
    out["spec"] = [json.loads(s) if s else None for s in out["spec"]]
    return out


def status_counts(path: str | Path) -> dict[str, int]:
    with h5py.File(path, "r") as f:
        status = f["tasks/status"][:]
    return {name: int((status == code).sum()) for code, name in STATUS_NAMES.items()}
