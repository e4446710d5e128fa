"""One HDF5 results file per campaign, for every kind: layout, creation, row writes, reading.

Layout (row i = task i of the expanded campaign; every dataset exists from the start):

    /                 attrs: format, kind, units (JSON), campaign (resolved, JSON), campaign_hash,
                             campaign_name, n_tasks, versions (JSON), created
    /tasks/id         (n,)    S16     task id (hash of the canonical spec)
    /tasks/spec       (n,)    S<L>    the task spec as JSON
    /tasks/<label>    (n, ...)        the kind's labels, known before running (e.g. system, method)
    /tasks/status     (n,)    int8    0 pending, 1 done, 2 failed
    /tasks/reason     (n,)    S256    why a task failed
    /tasks/rank       (n,)    int32   MPI rank that ran it
    /tasks/finished   (n,)    float64 unix time the row was completed
    /results/<column> (n, ...) the kind's result columns (NaN-padded curves), each with units
                      (a column only some tasks have: (m, ...) and /results/<column>_index (n,))
    /results/wall_time (n,)   float64 seconds (a batched unit's time divided by its size)

Format ``qpnn_hpc.results/2``. Files of format ``/1`` (trial campaigns before the one
engine) have the same layout without the ``kind`` attribute: they are read, resumed and
merged as trial files. The 1D dataset files of ``qpnn_hpc.dataset1d/1`` are refused with
the command that makes the new file.

Crash safety: the file is built under a temporary name and renamed into place; all
datasets are contiguous and allocated at creation, so later writes touch raw data only
(no metadata); a row's status is written last. A process killed at any moment leaves a
readable file in which every row marked done is complete.

One writer per file: HDF5's file locking is off (see :func:`open_file`), so a run takes
``<path>.lock`` (:mod:`qpnn_hpc.campaigns.lock`, by rank 0) before it calls :func:`create`
or opens a :class:`Writer`; the engine does this (:func:`qpnn_hpc.campaigns.engine.run_campaign`).

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

from qpnn_hpc.config import ConfigError

FORMAT = "qpnn_hpc.results/2"
FORMATS = {"qpnn_hpc.results/1": "trial", FORMAT: None}   # readable formats -> kind (None: attr)
OLD_DATASET_FORMAT = "qpnn_hpc.dataset1d/1"
PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}
REASON_BYTES = 255


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


def versions(libraries=("torch",)) -> dict:
    """Versions of what computed the numbers (JSON-able): the base stack and the kind's
    ``libraries`` (:attr:`qpnn_hpc.campaigns.kinds.Kind.libraries`)."""
    import importlib
    import scipy
    from qpnn_hpc import __version__
    out = {"qpnn_hpc": __version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
           "hdf5": h5py.version.hdf5_version, "parallel_hdf5": has_parallel_hdf5()}
    out.update({name: importlib.import_module(name).__version__ for name in libraries})
    try:
        import mpi4py
        from mpi4py import MPI
        out["mpi4py"] = mpi4py.__version__
        out["mpi"] = MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
    except Exception:  # pragma: no cover - mpi4py is a dependency, but report what is there
        out["mpi4py"] = None
    return out


def open_file(path, mode: str = "r", **kw) -> h5py.File:
    """``h5py.File`` without HDF5's file locking, so that ``status`` and ``report`` can read a
    results file while a campaign writes it (the rows they see are complete: status last)."""
    return h5py.File(path, mode, locking=False, **kw)


def _fapl(comm=None):
    """File access: no sieve buffer (each raw write goes straight to the OS), no file
    locking (see :func:`open_file`), mpio if comm."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    fapl.set_file_locking(False, True)
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


def _nan_fill(dtype: str):
    return np.nan if np.dtype(dtype).kind == "f" else None


def layout(campaign) -> dict:
    """What the kind says of the file: labels, result columns and extra root attributes.
    Computed once (by rank 0, under :func:`qpnn_hpc.parallel.agree`, so that an error in it,
    e.g. a missing dataset file, reaches every rank) and passed to :func:`create`."""
    kind, specs = campaign.plugin, campaign.specs
    return {"labels": kind.labels(campaign.config, specs), "columns": kind.columns(specs),
            "attrs": kind.attrs(specs) if kind.attrs is not None else {}}


def create(path: str | Path, campaign, comm=None, shape=None) -> None:
    """Create the results file of ``campaign`` (collectively when ``comm`` is given:
    every rank of ``comm`` must call this, with the same ``shape``, :func:`layout`'s result,
    computed here if not given). Built as ``path.tmp`` and renamed."""
    from qpnn_hpc.campaigns.files import spec_json, task_id
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    rank = 0 if comm is None else comm.Get_rank()
    if rank == 0 and tmp.exists():
        tmp.unlink()
    if comm is not None:
        comm.Barrier()
    shape = layout(campaign) if shape is None else shape
    specs = campaign.specs
    n = len(specs)
    spec_bytes = [spec_json(s).encode() for s in specs]
    L = max(len(s) for s in spec_bytes)
    labels, columns = shape["labels"], shape["columns"]
    kw = {"driver": "mpio", "comm": comm} if comm is not None else {}
    with open_file(tmp, "w", **kw) as f:
        # attribute values must be the same on every rank of a collective create: rank 0's
        stamp = (json.dumps(versions(campaign.plugin.libraries)), time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        stamp = comm.bcast(stamp, root=0) if comm is not None else stamp
        units = {c.name: c.units for c in columns if c.units}
        units["wall_time"] = "s"
        attrs = {"format": FORMAT, "kind": campaign.kind, "units": json.dumps(units),
                 "campaign": campaign.resolved_json(), "campaign_hash": campaign.hash,
                 "campaign_name": campaign.name, "n_tasks": n, "versions": stamp[0], "created": stamp[1]}
        attrs.update(shape["attrs"])
        attrs.update({name: np.float64(np.nan) for name in campaign.plugin.summary_names})
        for k, v in attrs.items():
            f.attrs[k] = v
        t = f.create_group("tasks")
        r = f.create_group("results")
        writes = [(_dataset(t, "id", (n,), "S16"), np.array([task_id(s).encode() for s in specs], dtype="S16")),
                  (_dataset(t, "spec", (n,), f"S{L}"), np.array(spec_bytes, dtype=f"S{L}"))]
        for name, values in labels.items():
            writes.append((_dataset(t, name, values.shape, values.dtype), values))
        _dataset(t, "status", (n,), "i1", PENDING)
        _dataset(t, "reason", (n,), f"S{REASON_BYTES + 1}")
        _dataset(t, "rank", (n,), "i4", -1)
        _dataset(t, "finished", (n,), "f8", np.nan)
        for c in columns:
            m = n if c.rows is None else len(c.rows)
            d = _dataset(r, c.name, (m, *c.shape), c.dtype, _nan_fill(c.dtype))
            if c.rows is not None:
                index = np.full(n, -1, dtype="i4")
                index[list(c.rows)] = np.arange(m)
                writes.append((_dataset(r, f"{c.name}_index", (n,), "i4"), index))
            if c.units:
                d.attrs["units"] = c.units
            if c.description:
                d.attrs["description"] = c.description
        _dataset(r, "wall_time", (n,), "f8", np.nan).attrs["units"] = "s"
        if rank == 0:  # raw data: independent writes by one rank
            for dset, data in writes:
                dset[...] = data
    if comm is not None:
        comm.Barrier()
    if rank == 0:
        os.replace(tmp, path)
    if comm is not None:
        comm.Barrier()


def read_attrs(path: str | Path, flag: str = "results") -> dict:
    """The root attributes of a results file, with ``kind`` resolved; a file that is not a
    readable results file of a known format is a ConfigError naming ``flag`` and the fix."""
    try:
        with open_file(path) as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
            has_status = "tasks/status" in f
    except (OSError, ValueError) as e:
        raise ConfigError(f"{flag}: {str(path)!r} is not a readable HDF5 file ({e})") from None
    fmt = attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt == OLD_DATASET_FORMAT:
        raise ConfigError(f"{flag}: {str(path)!r} is a 1D dataset file of format {fmt} (written before the "
                          "one campaign engine); make it again as a results file: "
                          "`qpnn-hpc run jobs/dataset1d.toml --out data/dataset1d.h5`")
    if fmt not in FORMATS or not has_status:
        raise ConfigError(f"{flag}: {str(path)!r} is not a qpnn_hpc results file (format {fmt!r}; "
                          f"readable: {', '.join(FORMATS)})")
    attrs["format"] = fmt
    attrs["kind"] = FORMATS[fmt] or attrs.get("kind")
    return attrs


def check_belongs(path: str | Path, campaign) -> np.ndarray:
    """Status array of an existing results file; ConfigError if it is another campaign's."""
    attrs = read_attrs(path, "--out")
    h = attrs.get("campaign_hash")
    if h != campaign.hash or attrs["kind"] != campaign.kind:
        raise ConfigError(f"--out: {str(path)!r} belongs to another campaign ({attrs['kind']} campaign "
                          f"{attrs.get('campaign_name', '?')!r}, campaign_hash {h}; this one is "
                          f"{campaign.hash}); choose another output path or delete it")
    with open_file(path) as f:
        return f["tasks/status"][:]


def _reason_bytes(reason: str) -> bytes:
    """``reason`` in UTF-8, cut to REASON_BYTES on a character boundary."""
    return reason.encode()[:REASON_BYTES].decode("utf-8", "ignore").encode()


class Writer:
    """Writes finished rows. ``comm`` given: this rank's rows through mpio (all ranks
    of ``comm`` construct and close it together); else a serial writer (rank 0)."""

    def __init__(self, path: str | Path, comm=None):
        self.f = _open(path, comm)
        self.mpio = comm is not None
        names = [name for name in self.f["results"] if name != "wall_time"]
        self.index = {name[:-6]: self.f["results"][name][...] for name in names if name.endswith("_index")}
        self.columns = [name for name in names if not name.endswith("_index")]

    def write(self, index: int, row: dict, rank: int, wall_time: float) -> None:
        """Row ``index``: the result columns of ``row`` (missing ones stay NaN; a failed row
        may carry none), then reason, rank, time, and the status last."""
        f = self.f
        r = f["results"]
        for name in self.columns:
            if name not in row:
                continue
            v = np.asarray(row[name])
            d = r[name]
            i = index if name not in self.index else self.index[name][index]
            if i < 0 or (v.ndim and v.size == 0):  # a task without this column; an empty value
                continue
            if v.ndim == 0:
                d[i] = v
            else:
                d[(i, *(slice(0, s) for s in v.shape))] = v
        r["wall_time"][index] = wall_time
        t = f["tasks"]
        t["reason"][index] = _reason_bytes(row.get("reason", ""))
        t["rank"][index] = rank
        t["finished"][index] = time.time()
        if not self.mpio:
            f.flush()
        # the status last: a row marked done is complete
        t["status"][index] = DONE if row["status"] == "done" else FAILED
        if not self.mpio:
            f.flush()

    def close(self) -> None:
        self.f.close()


def write_summary(path: str | Path, kind) -> None:
    """Rewrite the root attributes ``kind.summary_names`` from ``kind.summary(read_table(path))``
    (the serial writer, once no other writer has the file open: the end of a run or a merge).
    Each was created as a float64 scalar, so the new value has the same size and HDF5 rewrites
    it in place (one small write of the object header, no new space); attributes a file does
    not have (made before its kind had them) are left out."""
    if kind.summary is None:
        return
    values = kind.summary(read_table(path))
    f = _open(path)
    try:
        for name, value in values.items():
            if name in kind.summary_names and name in f.attrs:
                f.attrs.modify(name, np.float64(value))
    finally:
        f.close()


def read_table(path: str | Path) -> dict:
    """Everything in a results file as numpy arrays and decoded strings (for reports):
    the root attributes (``kind`` resolved), then every dataset of /tasks and /results
    by name; byte-string columns decoded, ``spec`` parsed from JSON."""
    attrs = read_attrs(path)
    with open_file(path) as f:
        out = dict(attrs)
        for g in ("tasks", "results"):
            for name, d in f[g].items():
                out[name] = d[...]
    for name, v in list(out.items()):
        if isinstance(v, np.ndarray) and v.dtype.kind == "S" and v.ndim == 1:
            out[name] = np.array([b.decode("utf-8", "replace") for b in v])
    out["spec"] = [json.loads(s) if s else None for s in out["spec"]]
    return out


def status_counts(path: str | Path) -> dict[str, int]:
    with open_file(path) as f:
        status = f["tasks/status"][:]
    return {name: int((status == code).sum()) for code, name in STATUS_NAMES.items()}
