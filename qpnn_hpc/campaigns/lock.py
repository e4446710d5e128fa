"""One writer per results file: ``<out>.lock``, held by a run for as long as it writes ``out``.

HDF5's own file locking is off (so that ``status`` and ``report`` can read a file while a run
writes it, :func:`qpnn_hpc.campaigns.store.open_file`), so two ``qpnn-hpc run`` on one file
would both run every pending task, and two starting on a missing file would race to create
it. Rank 0 of a run therefore takes ``<out>.lock`` before it creates or opens ``out`` for
writing, and removes it when the run ends (also on an error or an interrupt). The lock is a
small JSON file naming its holder: host, pid (rank 0's Python process), start time, the
process's start tick and the machine's boot id (to tell a reused pid), the command, and
SLURM_JOB_ID / SLURM_ARRAY_JOB_ID / SLURM_ARRAY_TASK_ID / SLURM_RESTART_COUNT /
SLURM_CLUSTER_NAME where set. It is created complete and atomically (a hard link of a
written temporary file, or ``O_CREAT|O_EXCL`` where the file system has no hard links).

A run that finds the lock held is refused (:class:`~qpnn_hpc.config.ConfigError`, one line
naming the holder and the fix). A lock left behind (SIGKILL, a lost node) is stale and is
taken over when that can be known:

* the holder ran on this host and its process is gone (no such pid, a zombie, or the pid
  now belongs to a process started at another time, or the machine restarted since);
* the holder is the same Slurm job as this run (``SLURM_JOB_ID`` and the cluster name equal:
  a requeued or restarted job, whose rank 0 may now be on another node) and it is not a
  live process on this host.

A lock held on another host by anything else is not taken over (its process cannot be
checked from here): the error says how to check it and to delete the lock file if that run
is dead. A takeover is race-free: under a guard file ``<out>.lock.takeover`` (created with
the same exclusive create, held for milliseconds) the lock is read again and replaced by an
atomic rename only if it is still the stale one. A guard older than
:data:`GUARD_STALE_S` is never removed automatically (the error names it).

The lock's name never looks like a results file: ``results.h5.lock`` (and the shard files
of a job array, ``results.shard<k>-of-<K>.h5``, each have their own).
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qpnn_hpc.config import ConfigError

FORMAT = "qpnn_hpc.lock/1"
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
              "SLURM_CLUSTER_NAME")
GUARD_STALE_S = 30.0   # s; a takeover holds the guard for milliseconds
RETRY_S = 10.0         # s; how long acquire keeps retrying while another process takes over


def lock_path(out: str | Path) -> Path:
    """``results.h5`` -> ``results.h5.lock`` (same folder)."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process from /proc; None where
    there is no /proc; raises ProcessLookupError when the process does not exist."""
    if not Path("/proc/self/stat").exists():
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()   # after "pid (comm) "; comm may hold spaces
    return fields[0], int(fields[19])               # field 3 (state) and field 22 (starttime)


def describe(out: str | Path) -> dict:
    """The holder record of this process for ``out``'s lock (JSON-able)."""
    stat = _proc_stat(os.getpid())
    info = {"format": FORMAT, "out": str(out), "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "started_unix": time.time(),
            "pid_start": stat[1] if stat else None, "boot_id": _boot_id(),
            "command": " ".join(sys.argv)[:500]}
    info.update({k.lower(): os.environ[k] for k in SLURM_VARS if os.environ.get(k)})
    return info


def _alive(info: dict) -> tuple[bool, str]:
    """Whether the holder's process (on this host) still runs, and if not, why."""
    pid = int(info["pid"])
    boot = _boot_id()
    if info.get("boot_id") and boot and info["boot_id"] != boot:
        return False, "this machine has restarted since"
    try:
        stat = _proc_stat(pid)
    except ProcessLookupError:
        return False, f"pid {pid} is no longer running"
    if stat is None:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False, f"pid {pid} is no longer running"
        except PermissionError:
            pass
        return True, ""
    state, start = stat
    if state in ("Z", "X"):
        return False, f"pid {pid} has exited (a zombie)"
    if info.get("pid_start") is not None and int(info["pid_start"]) != start:
        return False, f"pid {pid} is now another process"
    return True, ""


def stale_reason(info: dict) -> str | None:
    """Why the lock ``info`` is stale and may be taken over, or None if it must be respected."""
    if info.get("host") == socket.gethostname():
        alive, why = _alive(info)
        if not alive:
            return why
        return None
    job = os.environ.get("SLURM_JOB_ID")
    cluster, held_cluster = os.environ.get("SLURM_CLUSTER_NAME"), info.get("slurm_cluster_name")
    if job and info.get("slurm_job_id") == job and (not cluster or not held_cluster or cluster == held_cluster):
        return (f"it is this Slurm job {job} (restart {info.get('slurm_restart_count', '0')} then, "
                f"{os.environ.get('SLURM_RESTART_COUNT', '0')} now)")
    return None


def holder_text(info: dict) -> str:
    """``host H, pid P, since T, Slurm job J`` of a lock record."""
    parts = [f"host {info.get('host', '?')}", f"pid {info.get('pid', '?')}", f"since {info.get('started', '?')}"]
    if info.get("slurm_array_job_id") and info.get("slurm_array_task_id"):
        parts.append(f"Slurm job {info.get('slurm_job_id')} (array {info['slurm_array_job_id']}_"
                     f"{info['slurm_array_task_id']})")
    elif info.get("slurm_job_id"):
        parts.append(f"Slurm job {info['slurm_job_id']}")
    return ", ".join(parts)


def _refusal(out: Path, path: Path, info: dict) -> str:
    who = holder_text(info)
    if info.get("host") == socket.gethostname():
        fix = f"wait for it to finish (or stop it: kill {info.get('pid')}), then rerun"
    else:
        checks = [f"ssh {info.get('host')} ps -p {info.get('pid')}"]
        if info.get("slurm_job_id"):
            checks.append(f"squeue -j {info['slurm_job_id']}")
        fix = (f"its process cannot be checked from here: if that run is dead ({'; '.join(checks)}), "
               f"delete {str(path)!r} and rerun")
    return f"--out: {str(out)!r} is being written by another run ({who}; lock {str(path)!r}); {fix}"


def _create(src: Path, target: Path, content: bytes) -> bool:
    """Create ``target`` holding ``content``, atomically and only if it does not exist: a hard
    link of ``src`` (already written), or O_CREAT|O_EXCL where the file system has no links."""
    try:
        os.link(src, target)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _read(path: Path) -> tuple[bytes, dict] | None:
    """The lock's bytes and record; None if it vanished (released). A record that cannot be
    parsed is read again for a second (an O_EXCL create may be mid-write), then refused."""
    for attempt in range(20):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            info = json.loads(raw)
            if isinstance(info, dict) and "pid" in info:
                return raw, info
        except ValueError:
            pass
        time.sleep(0.05)
    raise ConfigError(f"--out: the lock file {str(path)!r} is unreadable ({raw[:60]!r}); if no qpnn-hpc run is "
                      "writing this results file, delete the lock file and rerun")


def _guard_age(guard: Path) -> float:
    try:
        return time.time() - guard.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _take_over(path: Path, mine: Path, content: bytes, held: bytes) -> bool:
    """Replace the stale lock ``held`` by ours, under the guard; False if the lock changed
    meanwhile or another process is taking it over (the caller tries again)."""
    guard = path.with_name(path.name + ".takeover")
    if not _create(mine, guard, content):
        if _guard_age(guard) > GUARD_STALE_S:
            got = _read(guard)
            who = holder_text(got[1]) if got else "?"
            raise ConfigError(f"--out: {str(guard)!r} is left from a lock takeover that did not finish ({who}); "
                              f"if no qpnn-hpc run is writing this results file, delete it and {str(path)!r}, "
                              "and rerun")
        return False
    try:
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            return False
        if now != held:
            return False
        os.replace(mine, path)  # atomic: the stale lock becomes ours
        return True
    finally:
        guard.unlink(missing_ok=True)


@dataclass
class Lock:
    """A held lock: :meth:`release` removes it (if it is still ours)."""
    path: Path
    content: bytes
    took_over: str | None = None    # a stale lock was taken over: whose, and why it was stale

    def release(self) -> None:
        try:
            if self.path.read_bytes() == self.content:
                self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:  # e.g. the folder made read-only meanwhile: say so, keep the run's own outcome
            print(f"qpnn-hpc run: warning: could not remove the lock {str(self.path)!r} ({e.strerror}); "
                  "delete it", file=sys.stderr, flush=True)


def acquire(out: str | Path) -> Lock:
    """Take ``out``'s lock for this process (rank 0 of a run), taking over a stale one;
    ConfigError naming the holder if another run holds it, or if the folder is not writable."""
    out = Path(out)
    path = lock_path(out)
    content = json.dumps(describe(out), indent=1).encode() + b"\n"
    mine = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        mine.write_bytes(content)
    except OSError as e:
        raise ConfigError(f"--out: cannot create the lock file {str(path)!r} ({e.strerror}); a run with pending "
                          "tasks needs a writable folder; choose another --out") from None
    try:
        deadline = time.monotonic() + RETRY_S
        while True:
            if _create(mine, path, content):
                return Lock(path, content)
            got = _read(path)
            if got is None:  # released meanwhile
                continue
            held, info = got
            why = stale_reason(info)
            if why is None:
                raise ConfigError(_refusal(out, path, info))
            if _take_over(path, mine, content, held):
                return Lock(path, content, f"{holder_text(info)}: {why}")
            if time.monotonic() > deadline:
                raise ConfigError(f"--out: could not take over the stale lock {str(path)!r} in {RETRY_S:.0f} s "
                                  "(other runs kept taking it); rerun")
            time.sleep(0.02)
    finally:
        mine.unlink(missing_ok=True)


def holder(out: str | Path) -> dict | None:
    """The record of the run holding ``out``'s lock (None if there is no lock), for ``status``."""
    try:
        return json.loads(lock_path(out).read_bytes())
    except (OSError, ValueError):
        return None
