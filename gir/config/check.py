"""Checking a parsed params mapping against the schema: types, coercion, ranges.

Unknown keys and values of the wrong type are rejected with a one-line error that names the
key (``train.lr: expected a number, got 'fast'``), so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from gir.config.schema import (ConfigError, DetectConfig, FolderConfig, PreprocessConfig,
                               SampleConfig, SplitConfig, SynthConfig, TrainConfig, ValidateConfig)

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
    hints = typing.get_type_hints(cls)
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


def _check_ranges(obj: Any, prefix: str) -> None:
    """Value checks that types alone cannot express."""

    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"{prefix + '.' if prefix else ''}{key}: {msg}")

    if isinstance(obj, SplitConfig):
        for k in ("train", "val", "test"):
            if not 0 <= getattr(obj, k) <= 1:
                bad(k, "must be between 0 and 1")
        if abs(obj.train + obj.val + obj.test - 1.0) > 1e-6:
            bad("train", f"train + val + test must be 1, got {obj.train + obj.val + obj.test:g}")
        if obj.min_test_scenes < 0:
            bad("min_test_scenes", "must be 0 or more")
    if isinstance(obj, TrainConfig):
        for k in ("steps", "batch_size", "crop", "checkpoint_every", "log_every", "image_every"):
            if getattr(obj, k) <= 0:
                bad(k, "must be positive")
        if obj.crop % 16:
            bad("crop", "must be a multiple of 16")
        if not 0 <= obj.ema_decay < 1:
            bad("ema_decay", "must be in [0, 1)")
        if obj.lr <= 0 or obj.lr_d <= 0:
            bad("lr", "must be positive")
        if not 0 <= obj.resynth <= 1:
            bad("resynth", "must be between 0 and 1")
        if any(w < 0 for w in obj.resynth_weights.values()):
            bad("resynth_weights", "weights must be 0 or more")
    if isinstance(obj, SynthConfig):
        for k in ("motion_length", "defocus_radius", "gaussian_sigma", "noise_sigma",
                  "shake_extent", "shake_focal_mm", "shot_noise", "read_noise", "jpeg_quality",
                  "highlight_gain", "highlight_share"):
            v = getattr(obj, k)
            if len(v) != 2 or v[0] > v[1] or v[0] < 0:
                bad(k, "must be [low, high] with 0 <= low <= high")
        if obj.shake_extent[0] <= 0 or obj.shake_focal_mm[0] <= 0:
            bad("shake_extent" if obj.shake_extent[0] <= 0 else "shake_focal_mm",
                "must be positive")
        if obj.shot_noise[1] > 0.2 or obj.read_noise[1] > 0.2:
            bad("shot_noise" if obj.shot_noise[1] > 0.2 else "read_noise",
                "at most 0.2 (a fraction of full scale)")
        if obj.jpeg_quality[0] < 1 or obj.jpeg_quality[1] > 100:
            bad("jpeg_quality", "must lie within [1, 100]")
        if obj.highlight_gain[0] < 1:
            bad("highlight_gain", "must be at least 1 (a gain above full scale)")
        if obj.highlight_share[1] > 0.5:
            bad("highlight_share", "at most 0.5 (a share of the brightest pixels)")
        for k in ("jpeg_probability", "highlight_probability"):
            if not 0 <= getattr(obj, k) <= 1:
                bad(k, "must be between 0 and 1")
        if obj.per_image <= 0:
            bad("per_image", "must be positive")
        if not obj.kinds:
            bad("kinds", "must name at least one blur kind")
    if isinstance(obj, (PreprocessConfig, SampleConfig, FolderConfig)) and obj.max_side < 16:
        bad("max_side", "must be at least 16")
    if isinstance(obj, DetectConfig):
        for k in ("fit_per_image", "eval_per_image"):
            if getattr(obj, k) <= 0:
                bad(k, "must be positive")
    if isinstance(obj, ValidateConfig) and not 0 <= obj.max_quarantine_fraction <= 1:
        bad("max_quarantine_fraction", "must be between 0 and 1")
