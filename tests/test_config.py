"""qpnn_hpc.config: strict parsing of frozen-dataclass configs, canonical ids and seeds."""
import dataclasses
from typing import Optional

import pytest

from qpnn_hpc.config import ConfigError, check, field, from_dict, read_toml, seed_from, spec_hash, to_dict


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = field(8, help="neurons")


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = field(help="a required name")
    lr: float = field(1e-3, help="learning rate")
    inner: Inner = field(default_factory=Inner, help="a nested table")
    clip: Optional[float] = field(None, help="optional")
    added_later: int = field(0, help="omitted from ids at its default", omit_default=True)

    def __post_init__(self):
        check(self.lr > 0, "lr", "must be > 0")


def test_from_dict_builds_nested_tables_and_converts_ints():
    o = from_dict(Outer, {"name": "a", "lr": 1, "inner": {"width": 4}})
    assert o == Outer("a", 1.0, Inner(4)) and isinstance(o.lr, float)


@pytest.mark.parametrize("data,match", [
    ({"name": "a", "colour": 1}, r"unknown key\(s\) colour; valid keys of Outer are: added_later, clip, inner, lr, name"),
    ({"name": "a", "inner": {"depth": 2}}, r"unknown key\(s\) inner.depth; valid keys of inner are: width"),
    ({}, r"missing required key name \(a required name\)"),
    ({"name": "a", "lr": "fast"}, r"lr: expected"),
    ({"name": "a", "lr": -1.0}, r"lr: must be > 0"),
    ({"name": "a", "inner": 3}, r"inner: expected a table"),
])
def test_bad_input_names_the_field(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Outer, data)


def test_ids_are_canonical_and_omit_default_keeps_old_ids():
    a = Outer("a")
    assert spec_hash(a) == spec_hash(from_dict(Outer, {"lr": 1e-3, "name": "a"}))  # key order irrelevant
    assert len(spec_hash(a)) == 16 and spec_hash(a) != spec_hash(Outer("b"))
    assert "added_later" not in to_dict(a)  # a field added later leaves earlier ids unchanged
    assert to_dict(dataclasses.replace(a, added_later=2))["added_later"] == 2
    # pinned: a change in canonical JSON or hashing would change every stored task id
    assert spec_hash({"b": 1, "a": [1.0, "x"]}) == spec_hash({"a": [1.0, "x"], "b": 1})
    assert seed_from(a, "init") != seed_from(a, "chain") and 0 <= seed_from(a, "init") < 2 ** 63


def test_read_toml_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="campaign: no such file"):
        read_toml(tmp_path / "missing.toml", "campaign")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_toml(bad, "campaign")
