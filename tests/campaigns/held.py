"""A real ``qpnn-hpc`` run whose rank 0 stops before one of its units until the test says go,
and small campaigns, for the lock, interrupt and writer-latency tests."""
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, mpi_env, mpiexec

# 4 trials of the 1D harmonic oscillator: about 1 s of work each on this machine
SMALL = """name = "small"
trials = 2
methods = ["mpnn", "qpnn"]

[defaults]
dtype = "float64"
model = { widths = [8, 8], init_scale = 1.0 }
train = { epochs = 10, points = 50, lr = 3e-3 }
sampler = { chains = 16, burn_in = 10, thin = 1 }
eval = { eps_points = 50, energy_sweeps = 4, uniform_energy_points = 100, grid_points = 11 }

[[systems]]
name = "harmonic_oscillator"
levels = [0]
half_width = 4.0
"""
ONE = SMALL.replace('trials = 2', 'trials = 1').replace('methods = ["mpnn", "qpnn"]', 'methods = ["mpnn"]')

# cli.main with rank 0's unit number HOLD held until the file GO exists; rank 0 writes its
# pid to GO.waiting when it starts waiting; every rank appends "rank first-task end-time" to
# GO.units when a unit ends
SCRIPT = """import os, sys, time
from pathlib import Path
from mpi4py import MPI
from qpnn_hpc import cli
from qpnn_hpc.campaigns import engine
real, seen = engine._run_unit, []
GO, HOLD = Path(sys.argv[1]), int(sys.argv[2])
def held(*a, **k):
    if MPI.COMM_WORLD.Get_rank() == 0:
        if len(seen) == HOLD:
            Path(str(GO) + ".waiting").write_text(str(os.getpid()))
            t0 = time.time()
            while not GO.exists() and time.time() - t0 < 300:
                time.sleep(0.02)
        seen.append(1)
    rows = real(*a, **k)
    with open(str(GO) + ".units", "a") as f:  # when each unit ended, on which rank
        f.write(f"{MPI.COMM_WORLD.Get_rank()} {a[2][0]} {time.time()!r}\\n")
    return rows
engine._run_unit = held
sys.exit(cli.main(sys.argv[3:]))
"""


def campaign(tmp_path: Path, text: str = SMALL, name: str = "small.toml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _default_sigint():  # preexec_fn: in the child between fork and exec
    """SIGINT back to its default action: a test suite started in the background of a
    non-interactive shell (nohup, CI runners) inherits SIGINT ignored, and Python then keeps
    it ignored, so the interrupt tests would wait forever."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Held:
    """``qpnn-hpc ARGS`` (under ``mpiexec -n RANKS`` if RANKS > 1) with rank 0 held before
    its unit ``hold`` (counted from 0) until :meth:`go`."""

    def __init__(self, tmp_path: Path, args, ranks: int = 1, hold: int = 0, tag: str = "go", env=None):
        script = tmp_path / "held_run.py"
        script.write_text(SCRIPT)
        self.go_file = tmp_path / tag
        self.waiting = tmp_path / f"{tag}.waiting"
        cmd = [sys.executable, str(script), str(self.go_file), str(hold), *map(str, args)]
        if ranks > 1:
            cmd = [mpiexec(), "-n", str(ranks), "--oversubscribe", *cmd]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env or mpi_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     preexec_fn=_default_sigint)

    def wait_held(self, timeout: float = 120) -> int:
        """Rank 0's pid, once it waits before the held unit."""
        t0 = time.time()
        while not self.waiting.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended before its held unit: {self.proc.communicate()}")
            if time.time() - t0 > timeout:
                raise AssertionError("the run did not reach its held unit")
            time.sleep(0.05)
        time.sleep(0.05)
        return int(self.waiting.read_text())

    def unit_ends(self) -> dict[int, tuple[int, float]]:
        """First task of every unit ended so far -> (rank, unix time it ended)."""
        path = self.go_file.with_name(self.go_file.name + ".units")
        lines = path.read_text().split() if path.exists() else []
        return {int(lines[i + 1]): (int(lines[i]), float(lines[i + 2])) for i in range(0, len(lines), 3)}

    def go(self) -> None:
        self.go_file.write_text("")

    def finish(self, timeout: float = 240):
        """(exit status, stdout, stderr) after go."""
        self.go()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            self.kill()
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.communicate()
        subprocess.run(["pkill", "-9", "-s", str(self.proc.pid)], check=False)
