"""The record of submitted jobs next to a results file, and their Slurm state.

``qpnn-hpc submit ... --out results.h5`` appends one entry per submission to
``results.h5.jobs.json``; ``qpnn-hpc status results.h5`` prints them with their state:

* Slurm jobs: ``sacct`` where Slurm keeps accounting, else ``squeue`` (which knows
  pending, running and recently finished jobs), else "unknown";
* local and debug jobs: the state recorded when ``submit`` saw them finish.

For a job array not merged yet (no ``results.h5``), the shard files' progress is shown.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

FORMAT = "qpnn_hpc.jobs/1"
QUERY_TIMEOUT_S = 20


def sidecar(out: str | Path) -> Path:
    return Path(str(out) + ".jobs.json")


def load(out: str | Path) -> list[dict]:
    p = sidecar(out)
    if not p.exists():
        return []
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return []
    return data.get("submissions", []) if isinstance(data, dict) else []


def _save(out: str | Path, submissions: list[dict]) -> None:
    p = sidecar(out)
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "submissions": submissions}, indent=1) + "\n")
    os.replace(tmp, p)


def record(out: str | Path, entry: dict) -> int:
    """Append a submission; returns its index."""
    subs = load(out)
    subs.append(entry)
    _save(out, subs)
    return len(subs) - 1


def update(out: str | Path, index: int, **fields) -> None:
    subs = load(out)
    if 0 <= index < len(subs):
        subs[index].update(fields)
        _save(out, subs)


# ------------------------------------------------------------------------- Slurm state

def _run(cmd: list[str]):
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (subprocess.TimeoutExpired, OSError):
        return None


def _expand(job_id: str) -> list[str]:
    """``12_[0-2,5]`` (a pending array in sacct) -> 12_0 12_1 12_2 12_5; others unchanged."""
    m = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(?:%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split(","):
        a, _, b = part.partition("-")
        out += [f"{m.group(1)}_{i}" for i in range(int(a), int(b or a) + 1)]
    return out


def _parse(text: str) -> dict[str, str]:
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        state = parts[1].split()[0] if parts[1].strip() else "?"
        if len(parts) > 2 and parts[2].strip() and parts[2].strip() != "None" and state == "PENDING":
            state += f" ({parts[2].strip()})"
        for jid in _expand(parts[0]):
            states.setdefault(jid, state)
    return states


def slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """{job id: (state, source)} for the ids sacct or squeue can tell; the rest are missing."""
    if not job_ids:
        return {}
    found: dict[str, tuple[str, str]] = {}

    def add(r, source: str) -> bool:
        if r is None or r.returncode != 0:
            return False
        for j, state in _parse(r.stdout).items():
            found.setdefault(j, (state, source))
        return True

    base = sorted({j.split("_")[0] for j in job_ids})
    # sacct fails without accounting ("Slurm accounting storage is disabled")
    add(_run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(base)]), "sacct")
    missing = sorted({j.split("_")[0] for j in job_ids if j not in found})
    squeue = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j"]
    if missing and not add(_run(squeue + [",".join(missing)]), "squeue") and len(missing) > 1:
        for b in missing:  # one id squeue no longer knows can fail the whole query
            add(_run(squeue + [b]), "squeue")
    return {j: found[j] for j in job_ids if j in found}


ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "REQUEUE_HOLD",
          "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED")


def active_jobs(out: str | Path, files: list[str | Path]) -> list[tuple[str, str, str]]:
    """Recorded Slurm jobs of ``out`` that Slurm still runs or will run (a requeued job is
    pending), writing one of ``files``: [(job id, state, file)]."""
    names = {str(Path(f).resolve()) for f in files}
    jobs = [j for s in load(out) if s.get("executor") == "slurm" for j in s.get("jobs", [])
            if str(Path(j.get("out", "")).resolve()) in names]
    states = slurm_states([j["id"] for j in jobs])
    return [(j["id"], states[j["id"]][0], j["out"]) for j in jobs
            if j["id"] in states and states[j["id"]][0].split()[0] in ACTIVE]


# ------------------------------------------------------------------------- status lines

def _shard_progress(job: dict) -> str:
    path = job.get("out")
    if not path or not Path(path).exists():
        return "no file yet"
    try:
        from qpnn_hpc.campaigns.store import open_file
        with open_file(path) as f:
            n = int((f["tasks/status"][:] != 0).sum())
    except (OSError, KeyError):
        return "file not readable yet"
    return f"{n} of {job.get('tasks', '?')} tasks finished"


def print_jobs(results_path: str | Path) -> bool:
    """Print the submitted jobs of ``results_path``; True when there is nothing more to show
    (jobs were submitted but the results file does not exist yet: an array not merged, or
    a job that has not started)."""
    subs = load(results_path)
    if not subs:
        return False
    slurm_ids = [j["id"] for s in subs if s.get("executor") == "slurm" for j in s.get("jobs", [])]
    states = slurm_states(slurm_ids)
    print(f"{results_path}: {len(subs)} submission(s) ({sidecar(results_path).name})")
    for s in subs:
        n = len(s.get("jobs", []))
        what = f"array of {n} shard jobs" if s.get("mode") == "array" else "job"
        print(f"  {s.get('submitted', '?')}: {s.get('executor')} {what} for {s.get('campaign')}"
              f"{' (' + s['resources_text'] + ')' if s.get('resources_text') else ''}")
        for j in s.get("jobs", []):
            if s.get("executor") == "slurm":
                state, source = states.get(j["id"], ("unknown", "not known to sacct or squeue"))
                state_text = f"{state} [{source}]"
            else:
                state_text = s.get("state", "unknown")
            where = f" shard {j['shard']}: {j['out']} ({_shard_progress(j)})" if j.get("shard") else ""
            print(f"    job {j['id']}: {state_text}{where}")
    arrays = [s for s in subs if s.get("mode") == "array"]
    if arrays and not Path(results_path).exists():
        print(f"  merge the shards when they are done: qpnn-hpc merge {arrays[-1].get('merge_glob', '...')} "
              f"--out {results_path}")
    return not Path(results_path).exists()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
