"""The schema of params.yaml: one dataclass per section, with defaults and allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gir.errors import GirError

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(GirError):
    """A params file or override that does not fit the schema."""


# --------------------------------------------------------------------------- schema


SynthKind = Literal["motion", "defocus", "gaussian", "shake"]  # what data.synth can draw


@dataclass
class SynthConfig:
    """How sharp photos are blurred synthetically (sample and folder sources)."""

    per_image: int = 6
    kinds: list[SynthKind] = field(
        default_factory=lambda: ["motion", "defocus", "gaussian"]
    )
    motion_length: list[float] = field(default_factory=lambda: [7.0, 21.0])
    defocus_radius: list[float] = field(default_factory=lambda: [2.0, 5.0])
    gaussian_sigma: list[float] = field(default_factory=lambda: [1.0, 2.5])
    noise_sigma: list[float] = field(default_factory=lambda: [0.0, 0.01])
    # Camera shake (kind `shake`): largest span of any corner's path, px; 35mm-equiv. focal.
    shake_extent: list[float] = field(default_factory=lambda: [4.0, 40.0])
    shake_focal_mm: list[float] = field(default_factory=lambda: [24.0, 85.0])
    # Realistic degradations; the defaults leave them off (params.yaml turns them on).
    linear_light: bool = False      # blur kernel kinds in linear light (shake always is)
    shot_noise: list[float] = field(default_factory=lambda: [0.0, 0.0])
    read_noise: list[float] = field(default_factory=lambda: [0.0, 0.0])
    jpeg_probability: float = 0.0
    jpeg_quality: list[int] = field(default_factory=lambda: [60, 95])
    highlight_probability: float = 0.0
    highlight_gain: list[float] = field(default_factory=lambda: [1.5, 4.0])
    highlight_share: list[float] = field(default_factory=lambda: [0.001, 0.01])


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
    min_test_scenes: int = 3    # the test split holds at least this many scenes (when there are)


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

    content: Literal["l1", "charbonnier", "psnr"] = "charbonnier"
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
    # How often each data.synth kind is drawn for those fresh blurs, relative to 1 for a kind
    # not named ({motion: 2.0}: motion twice as often). Stored pairs and val/test keep the cycle.
    resynth_weights: dict[SynthKind, float] = field(default_factory=dict)
    init: str = "pretrained"  # warm start: pretrained | none | a model directory | models:/ URI
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
