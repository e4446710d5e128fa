"""Where submitted campaign jobs run: one small API over submitit's executors.

    backend = executors.get("slurm")          # or "local", "debug"
    backend.check(res)                        # ConfigError if this backend cannot run it
    ex = backend.executor(folder, res)        # a submitit executor with the resources set
    text = backend.preview(folder, res, ["jobs/X.toml", "--out", "X.h5"], array=4)
                                              # a standalone sbatch script (slurm only), nothing submitted

:class:`Resources` holds what a user asks for (nodes, MPI tasks per node, GPUs, time,
partition, account, set-up lines such as ``module load``); each backend translates it
to its submitit executor, which is always named explicitly (submitit's AutoExecutor
picks Slurm whenever the Slurm commands are installed, even with no controller).

* ``slurm``: :class:`submitit.SlurmExecutor`. The job runs ``srun --mpi=<srun_mpi>``
  with nodes x tasks_per_node MPI ranks; ``--signal=USR2@<signal_delay_s>`` and
  ``--requeue``: on the signal (time limit near) or a preemption submitit checkpoints
  the job (the HDF5 file is the checkpoint) and requeues it (``scontrol requeue``).
* ``local``: :class:`submitit.LocalExecutor`, a subprocess on this machine (one MPI rank;
  a ``--array`` runs its shards as parallel processes).
* ``debug``: :class:`submitit.DebugExecutor`, in this process (one rank), for debugging.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from qpnn_hpc.cluster.sbatch import ENV_SETUP
from qpnn_hpc.config import ConfigError



@dataclass(frozen=True)
class Resources:
    """What one job asks for (one array task, with --array)."""
    nodes: int = 1
    tasks_per_node: int = 1          # MPI ranks per node (one per GPU on GPU nodes)
    gpus_per_node: int = 0
    cpus_per_task: Optional[int] = None
    time_min: int = 60
    partition: Optional[str] = None
    account: Optional[str] = None
    mem_gb: Optional[float] = None
    name: str = "qpnn-hpc"
    setup: tuple[str, ...] = ()      # shell lines before srun: module load ..., source venv/bin/activate
    srun_mpi: str = "pmix"           # srun --mpi=...: pmix (Open MPI), pmi2 (MPICH)
    signal_delay_s: int = 120        # USR2 this long before the time limit
    max_requeue: int = 10            # time limits reached after which the job is not requeued again
    sbatch: tuple[tuple[str, str], ...] = ()  # extra #SBATCH --key=value lines

    def __post_init__(self):
        for name, flag in (("nodes", "--nodes"), ("tasks_per_node", "--ntasks-per-node"), ("time_min", "--time")):
            if getattr(self, name) < 1:
                raise ConfigError(f"{flag}: must be >= 1, got {getattr(self, name)}")
        if self.gpus_per_node < 0:
            raise ConfigError(f"--gpus-per-node: must be >= 0, got {self.gpus_per_node}")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise ConfigError(f"--cpus-per-task: must be >= 1, got {self.cpus_per_task}")
        if self.signal_delay_s < 0 or self.max_requeue < 0:
            raise ConfigError("--signal-delay and --max-requeue: must be >= 0")

    @property
    def ranks(self) -> int:
        return self.nodes * self.tasks_per_node

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Backend:
    """One place jobs run. ``waits``: submit() returns once the jobs are finished."""
    name = "?"
    waits = True

    def check(self, res: Resources) -> None:
        pass

    def executor(self, folder: Path, res: Resources):
        raise NotImplementedError

    def preview(self, folder: Path, res: Resources, run_args: list, array: Optional[int] = None) -> str:
        raise ConfigError(f"--dry-run: only the slurm executor writes a batch script (not {self.name})")


class SlurmBackend(Backend):
    name = "slurm"
    waits = False

    def parameters(self, res: Resources) -> dict:
        """SlurmExecutor parameters (sbatch option names) for ``res``."""
        extra = {"requeue": True}
        extra.update(dict(res.sbatch))
        p = dict(job_name=res.name, nodes=res.nodes, ntasks_per_node=res.tasks_per_node, time=res.time_min,
                 setup=[*ENV_SETUP, *res.setup], srun_args=[f"--mpi={res.srun_mpi}"],
                 signal_delay_s=res.signal_delay_s, additional_parameters=extra)
        optional = dict(cpus_per_task=res.cpus_per_task, gpus_per_node=res.gpus_per_node or None,
                        partition=res.partition, account=res.account,
                        mem=None if res.mem_gb is None else _mem(res.mem_gb))
        p.update({k: v for k, v in optional.items() if v is not None})
        return p

    def executor(self, folder: Path, res: Resources):
        import submitit
        try:
            ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=res.max_requeue)
        except RuntimeError as e:  # no srun on this machine
            raise ConfigError(f"--executor slurm: {e}; use --executor local or debug here, "
                              "or --dry-run to see the batch script") from None
        ex.update_parameters(**self.parameters(res))
        return ex

    def preview(self, folder: Path, res: Resources, run_args: list, array: Optional[int] = None) -> str:
        """A standalone sbatch script running ``qpnn-hpc run RUN_ARGS`` with these resources
        (:mod:`qpnn_hpc.cluster.sbatch`); no srun needed, nothing submitted."""
        from qpnn_hpc.cluster import sbatch
        return sbatch.script(res, folder, run_args, array)


def _mem(gb: float) -> str:
    return f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"


class LocalBackend(Backend):
    name = "local"

    def check(self, res: Resources) -> None:
        _one_rank(self.name, res)

    def executor(self, folder: Path, res: Resources):
        import submitit
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=res.max_requeue)
        ex.update_parameters(timeout_min=res.time_min, tasks_per_node=1, gpus_per_node=res.gpus_per_node,
                             signal_delay_s=min(res.signal_delay_s, 60 * res.time_min // 2),
                             setup=list(res.setup))
        return ex


class DebugBackend(Backend):
    name = "debug"

    def check(self, res: Resources) -> None:
        _one_rank(self.name, res)

    def executor(self, folder: Path, res: Resources):
        import submitit
        return submitit.DebugExecutor(folder=folder)


def _one_rank(name: str, res: Resources) -> None:
    if res.ranks != 1:
        raise ConfigError(f"--executor {name}: runs one process (one MPI rank), got {res.nodes} node(s) x "
                          f"{res.tasks_per_node} tasks; use --nodes 1 --ntasks-per-node 1 (or --array K for "
                          "K processes), `mpiexec -n N qpnn-hpc run` for N ranks here, or --executor slurm")


BACKENDS = {b.name: b for b in (SlurmBackend(), LocalBackend(), DebugBackend())}


def get(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"--executor: unknown {name!r}; use one of {', '.join(BACKENDS)}") from None
