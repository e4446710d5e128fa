"""Frozen-dataclass configuration with strict parsing.

Every configuration object in qpnn_hpc is a frozen dataclass whose fields carry a
comment (``metadata={"help": ...}``).  :func:`from_dict` builds one from plain
data (a TOML table, a JSON spec) and rejects

* unknown keys, listing the valid ones,
* values of the wrong type, naming the field and the expected type,

so that a typo in a campaign file fails at once with a message that says what to
write instead, never with a traceback from deep inside the training loop.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from typing import Any, Mapping


class ConfigError(ValueError):
    """Bad user input. The message names the field and how to fix it."""


def field(default: Any = dataclasses.MISSING, help: str = "", omit_default: bool = False, **kw):  # noqa: A002
    """A dataclass field with a one-line description (shown in error messages).

    ``omit_default``: for a field added after specs were first stored. At its default it
    is left out of :func:`to_dict`, hence of ids and seeds, so that every earlier spec
    keeps its id and its random streams (resume and bitwise reproduction still hold)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or default_factory for mutable defaults")
    return dataclasses.field(default=default, metadata={"help": help, "omit_default": omit_default}, **kw)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, where: str):
    """Check (and where lossless, convert) ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: got {value!r}; give a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls, data: Mapping[str, Any] | None, where: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    prefix = f"{where}." if where else ""
    if unknown:
        valid = ", ".join(sorted(fields))
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; valid keys of "
            f"{where or cls.__name__} are: {valid}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {prefix + name} ({f.metadata.get('help', '')})")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        if where and not str(e).startswith(where):
            raise ConfigError(f"{where}: {e}") from None
        raise


def to_dict(obj) -> dict:
    """Plain, JSON-serialisable data of a (nested) config dataclass."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if not (f.metadata.get("omit_default") and getattr(v, f.name) == f.default)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return v
    return conv(obj)


def canonical_json(data) -> str:
    """Canonical JSON (sorted keys, no whitespace, floats by repr): the input of ids."""
    if dataclasses.is_dataclass(data):
        data = to_dict(data)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_hash(data, length: int = 16) -> str:
    """Stable id of a spec: sha256 of its canonical JSON (as signac names jobs)."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:length]


def seed_from(*parts) -> int:
    """A 63-bit seed derived from a spec and a stream name, e.g. ``seed_from(spec, "init")``."""
    h = hashlib.sha256(canonical_json([to_dict(p) if dataclasses.is_dataclass(p) else p
                                       for p in parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def check(cond: bool, field_name: str, message: str) -> None:
    """Raise :class:`ConfigError` naming ``field_name`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"{field_name}: {message}")


def read_toml(path, what: str) -> dict:
    """Parse a TOML file; a missing, unreadable or invalid file is a ConfigError naming ``what``."""
    import tomllib
    from pathlib import Path
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file {str(path)!r}") from None
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {str(path)!r} ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what}: {str(path)!r} is not valid TOML ({e})") from None
