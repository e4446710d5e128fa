"""Shards of a campaign: a deterministic split of its tasks, one results file per shard,
and ``qpnn-hpc merge`` to combine the shard files into one results file.

    qpnn-hpc submit jobs/X.toml --out results.h5 --array 4 ...   # shard k -> results.shard<k>-of-4.h5
    qpnn-hpc merge results.shard*-of-4.h5 --out results.h5

Split (:func:`shard_tasks`): tasks of one batch key (one ``--batch`` group of the kind)
stay together; the groups, in campaign order, go round-robin to the shards (so every
shard gets a mix of systems and methods). With fewer groups than shards the tasks
themselves go round-robin. The split depends only on the campaign and the shard count.

A shard file has the layout of a full results file (:mod:`qpnn_hpc.campaigns.store`) with only
its own tasks' rows done or failed; the others stay pending. :func:`merge` copies the
finished rows of every shard into ``--out`` (built as ``<out>.tmp`` and renamed, so an
interrupted merge leaves nothing half-written). It refuses shards of another campaign
(``campaign_hash``), the same file given twice, and a task finished in two inputs with
different results (it ran twice: the shards do not come from one split). A row present,
identical, in two inputs (a copy, or an ``--out`` merged before) is not a conflict, so
merging again after rerunning unfinished shards just adds the new rows.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from qpnn_hpc.config import ConfigError

# Compared to tell an identical copy of a finished row from a second run of the task.
_SAME_RUN = ("tasks/status", "tasks/finished", "tasks/rank", "results/wall_time")


def shard_path(out: str | Path, k, n: int) -> Path:
    """``results.h5`` -> ``results.shard<k>-of-<n>.h5`` (same folder)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.shard{k}-of-{n}{out.suffix or '.h5'}")


def split(keys: list[str], n: int) -> list[list[int]]:
    """Task indices of each of ``n`` shards, from the tasks' batch keys (in campaign order)."""
    if n < 1:
        raise ConfigError(f"--array: must be >= 1, got {n}")
    if n > len(keys):
        raise ConfigError(f"--array: {n} shards but the campaign has only {len(keys)} tasks; "
                          f"use --array {len(keys)} or fewer")
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    out: list[list[int]] = [[] for _ in range(n)]
    if len(groups) >= n:
        for g, idx in enumerate(groups.values()):
            out[g % n].extend(idx)
    else:
        for i in range(len(keys)):
            out[i % n].append(i)
    return [sorted(s) for s in out]


def split_for(campaign, n: int) -> list[list[int]]:
    """Task indices of each of ``n`` shards of a campaign."""
    return split([campaign.plugin.batch_key(s) for s in campaign.specs], n)


def shard_tasks(campaign, k: int, n: int) -> list[int]:
    """Task indices of shard ``k`` of ``n`` (0 <= k < n) of a campaign."""
    if not 0 <= k < n:
        raise ConfigError(f"shard {k} of {n}: need 0 <= k < {n}")
    return split_for(campaign, n)[k]


# ------------------------------------------------------------------------------ merge

def _read(path: Path) -> dict:
    """Attributes and all row datasets of a results file (raises ConfigError if unreadable)."""
    from qpnn_hpc.campaigns import store
    attrs = store.read_attrs(path, "merge")
    with store.open_file(path) as f:
        rows = {f"{g}/{name}": d[...] for g in ("tasks", "results") for name, d in f[g].items()}
    return {"hash": attrs["campaign_hash"], "name": attrs.get("campaign_name", "?"), "kind": attrs["kind"],
            "n": int(attrs["n_tasks"]), "rows": rows}


def _same(a: dict, b: dict, i: int) -> bool:
    import numpy as np
    for key in _SAME_RUN:
        x, y = a["rows"][key][i], b["rows"][key][i]
        if not (x == y or (isinstance(x, float) and np.isnan(x) and np.isnan(y))):
            return False
    return True


def merge(inputs: list[str | Path], out: str | Path) -> dict[str, int]:
    """Copy the finished rows of ``inputs`` (shard files of one campaign) into ``out``.

    ``out`` is created, or, if it exists, must be a results file of the same campaign
    (its finished rows are kept). Returns the status counts of the merged file."""
    import numpy as np
    from qpnn_hpc.campaigns import store
    out = Path(out)
    if not inputs:
        raise ConfigError("merge: give at least one shard file")
    paths = [Path(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for p in paths:
        real = p.resolve()
        if real in seen:
            raise ConfigError(f"merge: {str(p)!r} is given twice (as {str(seen[real])!r}); give each shard once")
        seen[real] = p
    if out.exists() and out.resolve() in seen:
        raise ConfigError(f"merge: --out {str(out)!r} is also an input; write the merge to a new file")
    if not out.parent.exists():
        raise ConfigError(f"merge: --out folder {str(out.parent)!r} does not exist")
    from qpnn_hpc.campaigns import lock
    held = lock.acquire(out)  # one writer per file: no run writes --out while it is merged into
    try:
        return _merge(paths, out)
    finally:
        held.release()


def _merge(paths: list[Path], out: Path) -> dict[str, int]:
    import numpy as np
    from qpnn_hpc.campaigns import kinds, store
    sources = [(p, _read(p)) for p in paths]
    if out.exists():
        sources.insert(0, (out, _read(out)))
    base_path, base = sources[0]
    for p, s in sources[1:]:
        if s["hash"] != base["hash"] or s["kind"] != base["kind"]:
            raise ConfigError(
                f"merge: {str(p)!r} belongs to another campaign ({s['name']!r}, campaign_hash {s['hash']}) "
                f"than {str(base_path)!r} ({base['name']!r}, campaign_hash {base['hash']}); "
                "merge only the shards of one campaign")
        for key, v in base["rows"].items():
            if key not in s["rows"] or s["rows"][key].shape != v.shape:
                raise ConfigError(f"merge: {str(p)!r} has another layout than {str(base_path)!r} ({key})")

    # which input holds each finished row; refuse a task that ran twice
    owner = np.full(base["n"], -1)
    conflicts = []
    for j, (p, s) in enumerate(sources):
        finished = s["rows"]["tasks/status"] != store.PENDING
        for i in np.nonzero(finished)[0]:
            if owner[i] < 0:
                owner[i] = j
            elif not _same(sources[owner[i]][1], s, i):
                conflicts.append((i, owner[i], j))
    if conflicts:
        ids = base["rows"]["tasks/id"]
        lines = [f"task {i} ({ids[i].decode()}) is finished in both "
                 f"{str(sources[a][0])!r} and {str(sources[b][0])!r} with different results"
                 for i, a, b in conflicts[:5]]
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        raise ConfigError("merge: conflicting rows: " + "; ".join(lines) + more +
                          ". Each task must be run in one shard only: merge shards of one split "
                          "(one `qpnn-hpc submit --array K`) and not a separate run of the same tasks")

    tmp = out.with_name(out.name + ".tmp")
    shutil.copyfile(base_path, tmp)  # the layout and attributes; its own finished rows are in place
    try:
        with store.open_file(tmp, "r+") as f:
            take = owner > 0
            for key, v in base["rows"].items():
                if key == "tasks/status":  # written last, below
                    continue
                merged = v.copy()
                index = base["rows"].get(f"{key}_index")  # a column only some tasks have
                for j in range(1, len(sources)):
                    sel = owner == j
                    if index is not None:
                        sel = index[sel & (index >= 0)]
                    merged[sel] = sources[j][1]["rows"][key][sel]
                if take.any():
                    f[key][...] = merged
            f.flush()
            status = base["rows"]["tasks/status"].copy()  # the status last: a row marked done is complete
            for j in range(1, len(sources)):
                sel = owner == j
                status[sel] = sources[j][1]["rows"]["tasks/status"][sel]
            f["tasks/status"][...] = status
            f.attrs["merged_from"] = json.dumps([str(p) for p, _ in sources])
        store.write_summary(tmp, kinds.get(base["kind"]))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return store.status_counts(out)


# ------------------------------------------------------------------------------ CLI

def _cli(args) -> int:
    counts = merge(args.shards, args.out)
    total = sum(counts.values())
    print(f"merged {len(args.shards)} file(s) into {args.out}: {total} tasks: " +
          ", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts.get("pending"):
        print(f"  {counts['pending']} tasks still pending: rerun the unfinished shards (the same "
              "`qpnn-hpc submit ... --array K` resumes them) and merge again")
    return 0


def add_parser(subparsers) -> None:
    """Register ``qpnn-hpc merge SHARD.h5 ... --out results.h5``."""
    p = subparsers.add_parser("merge", help="combine the shard files of a job array (qpnn-hpc submit --array) "
                                            "into one results file",
                              description="Combine the shard files of a job array (qpnn-hpc submit --array) "
                                          "into one results file (created, or completed if it exists); "
                                          "merging again after rerunning unfinished shards adds their new rows.",
                              epilog="examples:\n"
                                     "  qpnn-hpc merge results/demo.shard*-of-8.h5 --out results/demo.h5\n"
                                     "  qpnn-hpc status results/demo.h5")
    p.add_argument("shards", nargs="+", help="shard files (results.shard<k>-of-<K>.h5) of one campaign")
    p.add_argument("--out", required=True, help="merged results file (created, or completed if it exists)")
    p.set_defaults(fn=_cli)
