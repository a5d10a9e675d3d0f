"""Checking a parsed params mapping against the schema: types, coercion, ranges.

Unknown keys and values of the wrong type are rejected with a one-line error that names the
key (``train.lr: expected a number, got 'fast'``), so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Literal

from gir.config.schema import ConfigError, Range, SplitConfig, SynthConfig


def _type_name(tp: Any) -> str:
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return value checked (and, for int->float, widened) against the annotation tp."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:  # a type with its Range rule
        value = _coerce(value, args[0], key)
        for rule in args[1:]:
            _check_range(value, rule, key)
        return value
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: expected one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_coerce(k, args[0], key): _coerce(v, args[1], f"{key}.{k}")
                for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{full}: unknown key (allowed: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names:
        if name in data:
            full = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _coerce(data[name], hints[name], full)
    obj = cls(**kwargs)
    _check_ranges(obj, prefix)
    return obj


def _check_synth_shares(obj: SynthConfig, bad) -> None:
    """data.synth.shares: full / mild / sharp, each in [0, 1], summing to 1."""
    allowed = ("full", "mild", "sharp")
    unknown = [k for k in obj.shares if k not in allowed]
    if unknown:
        bad("shares", f"unknown severity {unknown[0]!r} (allowed: {', '.join(allowed)})")
    if any(not 0 <= v <= 1 for v in obj.shares.values()):
        bad("shares", "each share must be between 0 and 1")
    total = sum(obj.shares.values())
    if abs(total - 1.0) > 1e-6:
        bad("shares", f"full + mild + sharp must be 1, got {total:g}")


def _range_words(r: Range) -> str:
    """What a Range asks for, in the words of an error message."""
    if r.msg:
        return r.msg
    if r.gt == 0 and r.ge is None and r.le is None and r.lt is None:
        return "must be positive"
    if r.ge is not None and r.le is not None:
        return ("must be between 0 and 1" if (r.ge, r.le) == (0, 1) else
                f"must lie within [{r.ge:g}, {r.le:g}]")
    if r.ge is not None and r.lt is not None:
        return f"must be in [{r.ge:g}, {r.lt:g})"
    if r.ge is not None:
        return f"must be {r.ge:g} or more"
    if r.gt is not None:
        return f"must be more than {r.gt:g}"
    return f"must be at most {r.le:g}" if r.le is not None else f"must be below {r.lt:g}"


def _check_range(value: Any, r: Range, key: str) -> None:
    """Raise a one-line ConfigError naming key when value breaks the field's Range."""
    if not isinstance(r, Range):
        return
    items = list(value.values()) if isinstance(value, dict) else (
        list(value) if isinstance(value, list) else [value])
    if r.nonempty and not items:
        raise ConfigError(f"{key}: must not be empty")
    if r.length is not None and len(items) != r.length:
        raise ConfigError(f"{key}: {_range_words(r)}")
    if r.pair and (len(items) != 2 or items[0] > items[1]):
        raise ConfigError(f"{key}: must be [low, high] with low <= high")
    if r.multiple_of and any(v % r.multiple_of for v in items):
        raise ConfigError(f"{key}: must be a multiple of {r.multiple_of}")
    for v in items:
        if ((r.ge is not None and v < r.ge) or (r.gt is not None and v <= r.gt)
                or (r.le is not None and v > r.le) or (r.lt is not None and v >= r.lt)):
            raise ConfigError(f"{key}: {_range_words(r)}")


def _check_ranges(obj: Any, prefix: str) -> None:
    """Rules across fields; a rule on one field sits on the field (schema.Range)."""

    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"{prefix + '.' if prefix else ''}{key}: {msg}")

    if isinstance(obj, SplitConfig) and abs(obj.train + obj.val + obj.test - 1.0) > 1e-6:
        bad("train", f"train + val + test must be 1, got {obj.train + obj.val + obj.test:g}")
    if isinstance(obj, SynthConfig):
        _check_synth_shares(obj, bad)
