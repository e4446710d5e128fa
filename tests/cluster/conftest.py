"""Fixtures for the cluster tests: a real single-node Slurm on localhost.

`slurm` (session): reuses a Slurm that answers `sinfo`, or brings one up with
.ci/slurm-up.sh and takes it down with .ci/slurm-down.sh at the end (only if it started it).
It skips when no Slurm can be had, unless QPNN_REQUIRE_CLUSTER=1, which makes that a failure.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = Path(os.environ.get("QPNN_SLURM_DIR", "/tmp/qpnn-slurm"))
UP_TIMEOUT_S = 180


def _unavailable(reason: str):
    if os.environ.get("QPNN_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"QPNN_REQUIRE_CLUSTER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def sinfo_answers(env: dict | None = None, timeout: float = 10) -> bool:
    """True when sinfo reaches a controller and the default partition has a usable node."""
    if shutil.which("sinfo") is None:
        return False
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    states = r.stdout.split()
    return r.returncode == 0 and any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states)


def _ctld_running() -> bool:
    """slurmctld of SLURM_DIR runs (cheap; sinfo against a dead controller retries for ~10 s)."""
    try:
        pid = int((SLURM_DIR / "run" / "slurmctld.pid").read_text())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # zombies: nothing reaps orphans here


@contextlib.contextmanager
def _slurm_conf(conf: str | None):
    """Set SLURM_CONF (for subprocesses and submitit) for the duration, then restore it."""
    old = os.environ.get("SLURM_CONF")
    if conf is not None:
        os.environ["SLURM_CONF"] = conf
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


@pytest.fixture(scope="session")
def slurm():
    """Yields {"conf": path or None, "started": bool}; SLURM_CONF is set for subprocesses."""
    if sinfo_answers():  # a Slurm the environment already points at
        yield {"conf": os.environ.get("SLURM_CONF"), "started": False}
        return
    conf = str(SLURM_DIR / "slurm.conf")
    if _ctld_running() and sinfo_answers(dict(os.environ, SLURM_CONF=conf)):
        with _slurm_conf(conf):  # up from an earlier .ci/slurm-up.sh (e.g. by .ci/run): leave it up
            yield {"conf": conf, "started": False}
        return
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        _unavailable("no sinfo answers and Slurm is not installed (run .ci/cluster-env.sh)")
    if os.geteuid() != 0:
        _unavailable("no sinfo answers and .ci/slurm-up.sh needs root")

    env = dict(os.environ, QPNN_SLURM_DIR=str(SLURM_DIR))
    script = lambda name: ["bash", str(REPO / ".ci" / name)]  # noqa: E731
    try:
        r = subprocess.run(script("slurm-up.sh"), env=env, capture_output=True, text=True, timeout=UP_TIMEOUT_S)
        if r.returncode != 0:
            _unavailable(f"no sinfo answers and .ci/slurm-up.sh failed (rc {r.returncode}):\n{r.stderr[-2000:]}")
        with _slurm_conf(conf):
            if not sinfo_answers():
                _unavailable(f"Slurm was brought up but sinfo does not answer (SLURM_CONF={conf})")
            yield {"conf": conf, "started": True}
    finally:
        # also after a half-failed or timed-out up: down stops only what the pid files under SLURM_DIR name
        subprocess.run(script("slurm-down.sh"), env=env, timeout=UP_TIMEOUT_S)
