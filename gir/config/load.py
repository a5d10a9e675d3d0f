"""Loading params: params.yaml (with an optional base file), ``--set`` overrides, flattening.

Command-line overrides use the same dotted keys as ``dvc exp run -S``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from gir.config.check import build
from gir.config.schema import DEFAULT_PARAMS, ConfigError, Params


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.sub=value`` (value in YAML syntax), as ``dvc exp run -S`` takes it."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_override(data: dict, key: str, value: Any) -> None:
    """Set a dotted key inside nested dicts, creating levels as needed."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{key}: {part} is not a section")
        node = nxt
    node[parts[-1]] = value


def params_from_dict(data: dict | None, overrides: list[str] | None = None) -> Params:
    """Check a params mapping plus ``key=value`` overrides and build Params."""
    data = dict(data or {})
    for text in overrides or []:
        key, value = parse_override(text)
        apply_override(data, key, value)
    return build(Params, data)


def params_from_struct(data: dict) -> Params:
    """Params from a JSON/protobuf struct (KFP pipeline parameters), which carries every number
    as a double: whole numbers become ints again (float fields widen them back when checked)."""

    def ints(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: ints(x) for k, x in v.items()}
        if isinstance(v, list):
            return [ints(x) for x in v]
        return v

    return params_from_dict(ints(data))


def load_params(path: str | Path | None = None, overrides: list[str] | None = None) -> Params:
    """Load params.yaml (or path) with overrides; a missing default file means all defaults."""
    path = Path(path) if path else DEFAULT_PARAMS
    data: dict = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        if "base" in data:  # a profile: `base: ../params.yaml` plus the keys it changes
            base = path.parent / str(data.pop("base"))
            if base.resolve() == path.resolve() or not base.exists():
                raise ConfigError(f"{path}: base {base} is not another params file")
            data = _deep_merge(to_dict(load_params(base)), data)
    elif path != DEFAULT_PARAMS:
        raise ConfigError(f"{path}: no such params file")
    return params_from_dict(data, overrides)


def _deep_merge(base: dict, over: dict) -> dict:
    """over's keys replace base's, section by section (mappings merge, other values replace).

    model.generator_args is replaced whole: another generator's args would not fit it."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "generator_args":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(obj: Any) -> dict:
    """Params (or a section) as plain nested dicts, for YAML, MLflow and KFP."""
    return dataclasses.asdict(obj)


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict to dotted keys, as MLflow params and `dvc params diff` show them."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out
