"""Campaign files: a TOML file naming its kind of work -> the campaign's tasks.

    kind = "solve1d"        # optional: a file without it is a "trial" campaign
    ...                     # the rest is the kind's own config (qpnn_hpc.campaigns.kinds)

Every task is a frozen-dataclass spec; its id is the hash of its canonical JSON (as signac
names its jobs), and the campaign's identity (``Campaign.hash``) is the hash of its task ids
in order: a results file belongs to a campaign when the hashes agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qpnn_hpc.campaigns import kinds
from qpnn_hpc.config import ConfigError, canonical_json, check, from_dict, read_toml, spec_hash, to_dict


@dataclass(frozen=True)
class Campaign:
    kind: str                # registered kind name (qpnn_hpc.campaigns.kinds.REGISTRY)
    name: str                # campaign name (free text)
    config: object           # the kind's resolved config (a frozen dataclass)
    specs: tuple             # the tasks, in campaign order

    @property
    def hash(self) -> str:
        """Identity of the campaign: the hash of its task ids in order."""
        return spec_hash([task_id(s) for s in self.specs])

    def resolved_json(self) -> str:
        return canonical_json(to_dict(self.config))

    @property
    def plugin(self) -> kinds.Kind:
        return kinds.get(self.kind)


def task_id(spec) -> str:
    """A task's id: the hash of its canonical spec."""
    return spec_hash(spec)


def spec_json(spec) -> str:
    return json.dumps(to_dict(spec), sort_keys=True)


def kind_of(path: str | Path) -> str:
    """The ``kind`` a campaign file names (the default if none); reads TOML only."""
    kind = read_toml(path, "campaign file").get("kind", kinds.DEFAULT)
    kinds.get(kind)
    return kind


def load(path: str | Path) -> Campaign:
    """Read and expand a campaign file; every error names the field (and the file)."""
    path = Path(path)
    data = read_toml(path, "campaign file")
    kind = data.pop("kind", kinds.DEFAULT)
    plugin = kinds.get(kind)
    try:
        config = from_dict(plugin.Config, data)
        name, specs = plugin.expand(config, path.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{path.name}: {e}") from None
    check(len(specs) > 0, f"{path.name}", "the campaign has no tasks")
    ids = [task_id(s) for s in specs]
    check(len(set(ids)) == len(ids), f"{path.name}",
          "two tasks have the same spec; remove duplicate values (grid, systems)")
    return Campaign(kind, name, config, tuple(specs))
