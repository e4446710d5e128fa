"""qpnn_hpc.parallel on one rank (in process) and two real ranks (mpiexec)."""
import subprocess
import sys

import pytest
import torch

from qpnn_hpc import parallel
from qpnn_hpc.config import ConfigError

from tests.conftest import ROOT, mpi_env, mpiexec


def test_one_rank_world():
    r = parallel.ranks()
    assert (r.rank, r.size) == (0, 1)
    assert list(parallel.dynamic(5, r)) == [0, 1, 2, 3, 4]
    assert parallel.agree(r.comm, lambda: 42) == 42
    with pytest.raises(ConfigError, match="bad"):
        parallel.agree(r.comm, lambda: (_ for _ in ()).throw(ConfigError("bad")))
    written = []
    g = parallel.Gather(r, lambda p, rank: written.append((p, rank)), mpio=False)
    g.put("a"), g.put("b"), g.finish()
    assert written == [("a", 0), ("b", 0)] and g.written == 2
    assert parallel.pick_device(r, "cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device: cuda requested but no GPU"):
            parallel.pick_device(r, "cuda")


SCRIPT = """
from qpnn_hpc import parallel
from qpnn_hpc.config import ConfigError
r = parallel.ranks()
for threaded in (False, True):
    mine = list(parallel.dynamic(7, r))
    got = []
    g = parallel.Gather(r, (lambda p, rank: got.append((p, rank))) if r.rank == 0 else None, False, threaded)
    for k in mine:
        g.put(k)
        g.drain()
    g.finish()
    if r.rank == 0:
        assert sorted(p for p, _ in got) == list(range(7)), got
        assert {rank for _, rank in got} <= {0, 1} and g.threaded == threaded
        print("threaded", threaded, "units", sorted(p for p, _ in got), "ranks", sorted({rank for _, rank in got}))
try:
    parallel.agree(r.comm, lambda: (_ for _ in ()).throw(ConfigError("field: bad")))
except ConfigError as e:
    print(f"rank {r.rank} heard: {e}")
def only_rank_1():
    if r.rank == 1:
        raise ConfigError("--device: no GPU on rank 1")
    return r.rank
try:
    parallel.on_every_rank(r.comm, only_rank_1)
except ConfigError as e:
    print(f"rank {r.rank} heard: {e}")
try:
    parallel.agree(r.comm, lambda: 1 / 0)
except RuntimeError as e:
    print(f"rank {r.rank} heard: {e}")
try:  # a file error on rank 0 reaches every rank as that OSError (the CLI prints it once)
    parallel.agree(r.comm, lambda: open("/nonexistent-folder/x.h5", "w"))
except OSError as e:
    print(f"rank {r.rank} heard OSError {e.errno} {e.filename} every rank {getattr(e, 'on_every_rank', False)}")
"""


def test_two_ranks_take_every_unit_once_and_hear_rank_zero_errors(tmp_path):
    script = tmp_path / "p.py"
    script.write_text(SCRIPT)
    p = subprocess.run([mpiexec(), "-n", "2", "--oversubscribe", sys.executable, str(script)],
                       capture_output=True, text=True, timeout=120, env=mpi_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    for threaded in (False, True):
        assert f"threaded {threaded} units [0, 1, 2, 3, 4, 5, 6]" in p.stdout
    for rank in (0, 1):
        assert f"rank {rank} heard: field: bad" in p.stdout
        assert f"rank {rank} heard: on rank 0: ZeroDivisionError" in p.stdout
        assert f"rank {rank} heard: --device: no GPU on rank 1" in p.stdout
        assert f"rank {rank} heard OSError 2 /nonexistent-folder/x.h5 every rank True" in p.stdout
