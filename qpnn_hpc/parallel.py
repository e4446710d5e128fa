"""The parallel layer: ranks, devices and dynamic scheduling.

* ranks: ``MPI.COMM_WORLD`` when the process was started by mpiexec/srun (a
  one-rank world otherwise); the node-local rank comes from an MPI shared-memory
  split (``Split_type(COMM_TYPE_SHARED)``).
* devices: one GPU per rank (node-local rank modulo the visible GPUs) where there
  are GPUs, else the CPU with torch threads = cores of the node / ranks on the node
  (unless OMP_NUM_THREADS is set: an explicit setting wins).
* scheduling: dynamic. Work units are numbered; a free rank takes the next one
  from a global atomic counter (``mpi4py.util.sync.Counter``, MPI-3 one-sided
  fetch-and-add), so every rank, rank 0 included, computes. mpi4py.futures'
  MPICommExecutor was measured first: its root only dispatches, so 2 ranks gave
  one worker and no speed-up (benchmarks/campaign_scaling.py).
* gathering rows (:class:`Gather`): with a serial writer the other ranks send their rows
  to rank 0, where a receiving thread writes them as they come (polled every
  :attr:`Gather.POLL_S`), while rank 0's main thread computes its own units; this needs
  ``MPI.Query_thread() == MPI.THREAD_MULTIPLE`` (mpi4py asks for it by default; pip's Open
  MPI gives it), else rank 0 writes what has arrived between its units.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass
class Ranks:
    comm: object          # MPI communicator (COMM_WORLD; a 1-rank world without mpiexec)
    rank: int
    size: int
    local_rank: int
    local_size: int


def ranks() -> Ranks:
    """This process's place in the MPI world (a 1-rank world without mpiexec)."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    r = Ranks(comm, comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size())
    local.Free()
    return r


def pick_device(r: Ranks, want: str = "auto") -> torch.device:
    """One GPU per rank where there are GPUs, else the CPU with a fair share of its cores."""
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        n = torch.cuda.device_count()
        if n == 0:
            from qpnn_hpc.config import ConfigError
            raise ConfigError("--device: cuda requested but no GPU is visible; use --device cpu")
        dev = torch.device("cuda", r.local_rank % n)
        torch.cuda.set_device(dev)
        return dev
    if "OMP_NUM_THREADS" not in os.environ:  # an explicit user setting wins
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // r.local_size))
    return torch.device("cpu")


def agree(comm, fn):
    """Run ``fn`` on rank 0 of ``comm`` and give every rank its value, or its error: a
    ConfigError again as a ConfigError (bad input fails on every rank with the same
    message), an OSError that names a file again as that OSError (the CLI makes it one
    line), any other exception as a RuntimeError naming it. So all ranks leave the step
    together instead of some waiting in the next collective call forever."""
    from qpnn_hpc.config import ConfigError
    if comm is None or comm.Get_size() == 1:
        return fn()
    out = err = None
    if comm.Get_rank() == 0:
        try:
            out = fn()
        except ConfigError as e:
            err = ("config", str(e))
        except OSError as e:
            err = ("os", (e.errno, e.strerror, e.filename)) if e.filename else ("other", f"OSError: {e}")
        except Exception as e:
            err = ("other", f"{type(e).__name__}: {e}")
    out, err = comm.bcast((out, err), root=0)
    if err is not None:
        what, message = err
        if what == "config":
            raise ConfigError(message)
        if what == "os":
            e = OSError(*message)
            e.on_every_rank = True  # every rank raises it: the CLI prints it once, no abort needed
            raise e
        raise RuntimeError(f"on rank 0: {message}")
    return out


def on_every_rank(comm, fn):
    """Run ``fn`` on every rank of ``comm``; if it raises a ConfigError on any rank, every
    rank raises the first such error (lowest rank), so that all leave together (e.g. a
    device check where one node has no GPU)."""
    from qpnn_hpc.config import ConfigError
    try:
        out, err = fn(), None
    except ConfigError as e:
        out, err = None, str(e)
    if comm is not None and comm.Get_size() > 1:
        err = next((e for e in comm.allgather(err) if e is not None), None)
    if err is not None:
        raise ConfigError(err)
    return out


def dynamic(n_units: int, r: Ranks) -> Iterator[int]:
    """Yield the unit indices this rank should run: each comes from a shared counter,
    so a free rank always takes the next unit. Collective: all ranks must iterate to the end."""
    if r.size == 1:
        yield from range(n_units)
        return
    from mpi4py.util.sync import Counter
    counter = Counter(0, comm=r.comm)
    try:
        while True:
            i = counter.next()
            if i >= n_units:
                break
            yield i
    finally:
        r.comm.Barrier()
        counter.free()


class Gather:
    """Where finished results go: written by this rank, or sent to rank 0, which writes them.

    ``write(payload, rank)`` is the rank's writer (None on ranks that do not write: the
    non-zero ranks with a serial h5py). With ``mpio`` every rank writes its own results.
    Otherwise the other ranks send theirs to rank 0 (non-blocking) and, in :meth:`finish`,
    an end mark; rank 0 writes them as they arrive: in a receiving thread where MPI allows
    threads (``threaded``: rows reach the file within :attr:`POLL_S` while rank 0 computes),
    else at each :meth:`drain` (between rank 0's units). :meth:`finish` returns when every
    other rank's end mark is in (all their results written). Writes are serialised by a
    lock, so a row is written whole by one thread; the rows and their values are the same
    either way.
    """

    TAG = 17
    POLL_S = 0.1   # s; the receiving thread's poll period (a blocking receive would spin a core)

    def __init__(self, r: Ranks, write, mpio: bool, threaded: bool | None = None):
        import threading
        self.r, self.write = r, write
        self.receives = r.rank == 0 and r.size > 1 and not mpio
        self.ends = r.rank != 0 and r.size > 1 and not mpio   # sends an end mark in finish
        self.written = self.ended = 0
        self.sends = []
        self.error = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = None
        if self.receives and (threaded if threaded is not None else self.thread_multiple()):
            self.thread = threading.Thread(target=self._receive_loop, name="qpnn-gather", daemon=True)
            self.thread.start()

    @property
    def threaded(self) -> bool:
        return self.thread is not None

    @staticmethod
    def thread_multiple() -> bool:
        from mpi4py import MPI
        return MPI.Query_thread() == MPI.THREAD_MULTIPLE

    def _take(self, message) -> None:
        payload, rank = message
        if payload is None:
            self.ended += 1
            return
        with self.lock:
            self.write(payload, rank)
            self.written += 1

    def _receive_loop(self) -> None:
        from mpi4py import MPI
        try:
            while self.ended < self.r.size - 1 and not self.stopping.is_set():
                m = self.r.comm.improbe(source=MPI.ANY_SOURCE, tag=self.TAG)
                if m is None:
                    self.stopping.wait(self.POLL_S)
                else:
                    self._take(m.recv())
        except BaseException as e:  # re-raised on the main thread (drain, finish)
            self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"rank 0 could not write a row: {type(self.error).__name__}: {self.error}") \
                from self.error

    def put(self, payload) -> None:
        self._check()
        if self.write is not None:
            with self.lock:
                self.write(payload, self.r.rank)
                self.written += 1
        else:
            self.sends.append(self.r.comm.isend((payload, self.r.rank), dest=0, tag=self.TAG))

    def drain(self, block: bool = False) -> None:
        """Rank 0 without a thread: write what has arrived (``block``: until every end mark)."""
        self._check()
        if not self.receives or self.thread is not None:
            return
        from mpi4py import MPI
        while (block and self.ended < self.r.size - 1) or self.r.comm.iprobe(source=MPI.ANY_SOURCE, tag=self.TAG):
            self._take(self.r.comm.recv(source=MPI.ANY_SOURCE, tag=self.TAG))

    def finish(self) -> None:
        """Collective end: the other ranks send their end mark; rank 0 writes until all are in."""
        if self.ends:
            self.sends.append(self.r.comm.isend((None, self.r.rank), dest=0, tag=self.TAG))
        if self.thread is not None:
            self.thread.join()
        self.drain(block=True)
        if self.sends:
            from mpi4py import MPI
            MPI.Request.waitall(self.sends)
            self.sends = []

    def stop(self) -> None:
        """Stop the receiving thread (on an error or interrupt; rows not yet received are
        lost with the run and stay pending in the file)."""
        if self.thread is not None:
            self.stopping.set()
            self.thread.join()
