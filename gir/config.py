"""Typed view of params.yaml: every knob of the workflow, checked once at load time.

Unknown keys and values of the wrong type are rejected with a one-line error that names the
key (``train.lr: expected a number, got 'fast'``), so a typo never silently falls back to a
default. Command-line overrides use the same dotted keys as ``dvc exp run -S``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gir.errors import GirError

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(GirError):
    """A params file or override that does not fit the schema."""


# --------------------------------------------------------------------------- schema


@dataclass
class SynthConfig:
    """How sharp photos are blurred synthetically (sample and folder sources)."""

    per_image: int = 6
    kinds: list[Literal["motion", "defocus", "gaussian"]] = field(
        default_factory=lambda: ["motion", "defocus", "gaussian"]
    )
    motion_length: list[float] = field(default_factory=lambda: [7.0, 21.0])
    defocus_radius: list[float] = field(default_factory=lambda: [2.0, 5.0])
    gaussian_sigma: list[float] = field(default_factory=lambda: [1.0, 2.5])
    noise_sigma: list[float] = field(default_factory=lambda: [0.0, 0.01])


@dataclass
class SampleConfig:
    """The embedded default: colour photographs shipped inside scikit-image."""

    images: list[str] = field(
        default_factory=lambda: [
            "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
            "hubble_deep_field", "motorcycle_left", "motorcycle_right",
        ]
    )
    max_side: int = 512


@dataclass
class GoproConfig:
    """A GOPRO_Large tree: train|test/<sequence>/{blur,blur_gamma,sharp}/*.png."""

    root: str = "data/external/GOPRO_Large"
    blur_variant: Literal["blur", "blur_gamma"] = "blur"
    max_pairs_per_sequence: int = 0


@dataclass
class FolderConfig:
    """Any local folder or s3:// prefix of sharp photos, blurred like the sample."""

    path: str = "data/external/photos"
    max_side: int = 1024
    endpoint_url: str = ""


@dataclass
class UnsplashConfig:
    """Unsplash search API client. The key comes only from UNSPLASH_ACCESS_KEY."""

    query: str = "landscape"
    count: int = 30
    per_page: int = 30
    api_url: str = "https://api.unsplash.com"
    requests_per_hour: int = 50
    size: Literal["regular", "small", "full"] = "regular"
    max_side: int = 1024


@dataclass
class DataConfig:
    """Where pairs come from."""

    source: Literal["sample", "gopro", "folder", "unsplash"] = "sample"
    synth: SynthConfig = field(default_factory=SynthConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    gopro: GoproConfig = field(default_factory=GoproConfig)
    folder: FolderConfig = field(default_factory=FolderConfig)
    unsplash: UnsplashConfig = field(default_factory=UnsplashConfig)
    max_pixels: int = 40_000_000


@dataclass
class ValidateConfig:
    """The great-expectations quality gate."""

    min_side: int = 64
    max_quarantine_fraction: float = 0.2
    min_sharpness_ratio: float = 1.0
    near_duplicate_bits: int = 8  # perceptual hashes at most this many bits apart


@dataclass
class PreprocessConfig:
    """Resize (longest side cap, aspect kept, antialiased)."""

    max_side: int = 512


@dataclass
class SplitConfig:
    """Deterministic split by scene."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1


@dataclass
class ModelConfig:
    """Architectures, chosen by name through gir.nn' registry."""

    generator: str = "nafnet"
    generator_args: dict[str, Any] = field(default_factory=dict)
    discriminator: str = "patchgan"
    discriminator_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    """Weights of each loss term; a weight of 0 switches the term off."""

    content: Literal["l1", "charbonnier"] = "charbonnier"
    content_weight: float = 1.0
    fft_weight: float = 0.05
    adversarial: Literal["bce", "lsgan", "wgan-gp", "none"] = "lsgan"
    adversarial_weight: float = 0.005
    perceptual_weight: float = 0.0
    perceptual_weights_file: str = ""
    gp_weight: float = 10.0


@dataclass
class TrainConfig:
    """Optimisation. The default finishes in a few minutes on 2 CPU cores."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    steps: int = 900
    batch_size: int = 8
    crop: int = 96
    resynth: float = 0.5  # share of synthetic crops re-blurred with a fresh kernel (data.synth)
    lr: float = 2e-3
    lr_d: float = 2e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    adversarial_start: int = 400
    ema_decay: float = 0.999
    amp: bool = True
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0
    checkpoint_every: int = 200
    log_every: int = 20
    image_every: int = 300
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class EvaluateConfig:
    """Scoring on the held-out test split."""

    split: Literal["test", "val"] = "test"
    max_images: int = 0
    references: list[str] = field(default_factory=lambda: ["blurred", "unsharp"])


@dataclass
class RegisterConfig:
    """The MLflow model registry."""

    model_name: str = "gir-deblur"
    metric: Literal["psnr", "ssim"] = "psnr"


@dataclass
class DetectConfig:
    """The blur detector: fitted on synthetic composites, tracked and registered like the model."""

    seed: int = 1234
    fit_per_image: int = 12     # composites per fitting photo (x4 for the blur-type classifier)
    eval_per_image: int = 12    # held-out composites per photo for the F-measure / accuracy
    model_name: str = "gir-detector"


@dataclass
class MlflowConfig:
    """Tracking. MLFLOW_TRACKING_URI in the environment wins over tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "gir"


@dataclass
class Params:
    """All of params.yaml."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


# --------------------------------------------------------------------------- checking


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
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
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


def _build(cls: type, data: dict, prefix: str = "") -> Any:
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
    if isinstance(obj, SynthConfig):
        for k in ("motion_length", "defocus_radius", "gaussian_sigma", "noise_sigma"):
            v = getattr(obj, k)
            if len(v) != 2 or v[0] > v[1] or v[0] < 0:
                bad(k, "must be [low, high] with 0 <= low <= high")
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
    return _build(Params, data)


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

