"""The schema of params.yaml: one dataclass per section, with defaults and allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from gir.errors import GirError

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(GirError):
    """A params file or override that does not fit the schema."""


@dataclass(frozen=True)
class Range:
    """A value rule that sits on its field (``Annotated[int, Range(gt=0)]``), checked at load by
    gir.config.check. Bounds apply to a number, to each item of a list and to each value of a
    mapping; ``pair`` asks for [low, high], ``length`` for that many items; ``msg`` replaces the
    generated wording."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    multiple_of: int | None = None
    length: int | None = None
    pair: bool = False
    nonempty: bool = False
    msg: str = ""


POSITIVE = Range(gt=0)
SHARE = Range(ge=0, le=1)
SPAN = Range(pair=True, ge=0)        # [low, high] with 0 <= low <= high
Positive = Annotated[int, POSITIVE]
Share = Annotated[float, SHARE]
Span = Annotated[list[float], SPAN]
PositiveSpan = Annotated[list[float], Range(pair=True, gt=0)]
NoiseSpan = Annotated[list[float], Range(pair=True, ge=0, le=0.2)]
Betas = Annotated[list[float], Range(length=2, ge=0, lt=1, msg="must be [beta1, beta2], each in [0, 1)")]
WEIGHTS = Range(ge=0, msg="weights must be 0 or more")

# Names kept in registries of higher layers (gir.nn, gir.data.sources, gir.rectifier.scoring),
# which config may not import (imports point down). They are spelled here so that a typo fails
# at load, and tests/config/test_config.py checks that each list equals its registry.
GeneratorName = Literal["fourier_unet", "nafnet", "resnet"]
DiscriminatorName = Literal["patchgan"]
SourceName = Literal["sample", "gopro", "folder", "unsplash", "dvc"]
ReferenceName = Literal["blurred", "unsharp", "wiener", "richardson_lucy", "pretrained"]


# --------------------------------------------------------------------------- schema


SynthKind = Literal["motion", "defocus", "gaussian", "shake"]  # what data.synth can draw
MotionFamily = Literal["smooth_walk", "jittery_walk", "boracchi_foi", "linear"]  # gir.data.psf


@dataclass
class SynthConfig:
    """How sharp photos are blurred synthetically (sample and folder sources)."""

    per_image: Positive = 8
    kinds: Annotated[list[SynthKind], Range(nonempty=True)] = field(
        default_factory=lambda: ["motion", "defocus", "gaussian", "shake"]
    )
    motion_length: Span = field(default_factory=lambda: [7.0, 21.0])
    defocus_radius: Span = field(default_factory=lambda: [2.0, 5.0])
    gaussian_sigma: Span = field(default_factory=lambda: [1.0, 2.5])
    noise_sigma: Span = field(default_factory=lambda: [0.0, 0.0])  # sRGB (legacy)
    # Camera shake (kind `shake`): largest span of any corner's path, px; 35mm-equiv. focal.
    shake_extent: PositiveSpan = field(default_factory=lambda: [4.0, 40.0])
    shake_focal_mm: PositiveSpan = field(default_factory=lambda: [24.0, 85.0])
    # Realistic degradations ([0, 0] or probability 0 = off).
    linear_light: bool = True       # blur kernel kinds in linear light (shake always is)
    # Severity of each pair: a full blur, a mild one (mild_* ranges) or an identity pair
    # (kind `sharp`, the photo with itself; fresh training blurs only). Must sum to 1.
    shares: dict[str, float] = field(
        default_factory=lambda: {"full": 0.75, "mild": 0.15, "sharp": 0.1})
    mild_motion_length: Span = field(default_factory=lambda: [1.0, 6.0])
    mild_defocus_radius: Span = field(default_factory=lambda: [0.5, 1.5])
    mild_gaussian_sigma: Span = field(default_factory=lambda: [0.3, 0.9])
    mild_shake_extent: PositiveSpan = field(default_factory=lambda: [1.5, 6.0])
    motion_families: Annotated[list[MotionFamily], Range(nonempty=True)] = field(
        default_factory=lambda: ["smooth_walk", "jittery_walk", "boracchi_foi", "linear"])
    defocus_blades: Annotated[list[int], Range(pair=True, ge=3)] = field(
        default_factory=lambda: [5, 9])  # polygonal aperture
    defocus_round_probability: Share = 0.3     # share of round apertures instead
    defocus_spherical: Annotated[list[float], Range(pair=True, ge=0, le=1)] = field(
        default_factory=lambda: [0.0, 0.4])  # |aberration|
    defocus_depth_probability: Share = 0.2     # share of defocus that ramps with depth
    # shot and read noise: fractions of full scale, in linear light
    shot_noise: NoiseSpan = field(default_factory=lambda: [0.0, 0.01])
    read_noise: NoiseSpan = field(default_factory=lambda: [0.0, 0.002])
    jpeg_probability: Share = 0.3
    jpeg_quality: Annotated[list[int], Range(pair=True, ge=1, le=100)] = field(
        default_factory=lambda: [70, 95])
    highlight_probability: Share = 0.2
    highlight_gain: Annotated[list[float], Range(pair=True, ge=1)] = field(  # above full scale
        default_factory=lambda: [1.5, 4.0])
    highlight_share: Annotated[list[float], Range(pair=True, ge=0, le=0.5)] = field(
        default_factory=lambda: [0.001, 0.01])  # of the brightest pixels


@dataclass
class SampleConfig:
    """The embedded default: colour photographs shipped inside scikit-image."""

    images: list[str] = field(
        default_factory=lambda: [
            "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
            "hubble_deep_field", "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel",
        ]
    )
    max_side: Annotated[int, Range(ge=16)] = 512


@dataclass
class GoproConfig:
    """A GOPRO_Large tree: train|test/<sequence>/{blur,blur_gamma,sharp}/*.png."""

    root: str = "data/external/GOPRO_Large"   # or s3://bucket/prefix
    blur_variant: Literal["blur", "blur_gamma"] = "blur"
    max_pairs_per_sequence: int = 0
    endpoint_url: str = ""   # S3-compatible endpoint; empty = AWS


@dataclass
class DvcSourceConfig:
    """A data version from a DVC remote: the ingested pairs (data/raw) of a git revision."""

    repo: str = ""            # git URL or path of the DVC project; empty = this project
    rev: str = ""             # git tag, branch or commit naming the data version; empty = HEAD
    path: str = "data/raw"    # the ingest output tracked by DVC in that revision


@dataclass
class FolderConfig:
    """Any local folder or s3:// prefix of sharp photos, blurred like the sample."""

    path: str = "data/external/photos"
    max_side: Annotated[int, Range(ge=16)] = 1024
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

    source: SourceName = "sample"
    synth: SynthConfig = field(default_factory=SynthConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    gopro: GoproConfig = field(default_factory=GoproConfig)
    folder: FolderConfig = field(default_factory=FolderConfig)
    unsplash: UnsplashConfig = field(default_factory=UnsplashConfig)
    dvc: DvcSourceConfig = field(default_factory=DvcSourceConfig)
    max_pixels: int = 64_000_000   # one limit for ingest, rectify, deblur and serve


@dataclass
class ValidateConfig:
    """The great-expectations quality gate."""

    min_side: int = 64
    max_quarantine_fraction: Share = 0.2
    min_sharpness_ratio: float = 1.0
    near_duplicate_bits: int = 8  # perceptual hashes at most this many bits apart


@dataclass
class PreprocessConfig:
    """Resize (longest side cap, aspect kept, antialiased)."""

    max_side: Annotated[int, Range(ge=16)] = 512


@dataclass
class SplitConfig:
    """Deterministic split by scene."""

    train: Share = 0.8
    val: Share = 0.1
    test: Share = 0.1
    # the test split holds at least this many scenes (when there are)
    min_test_scenes: Annotated[int, Range(ge=0)] = 3


@dataclass
class ModelConfig:
    """Architectures, chosen by name through gir.nn' registry."""

    generator: GeneratorName = "nafnet"
    generator_args: dict[str, Any] = field(default_factory=lambda: {"width": 16})
    discriminator: DiscriminatorName = "patchgan"
    discriminator_args: dict[str, Any] = field(
        default_factory=lambda: {"base": 32, "layers": 3, "spectral_norm": True})


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
class DistributedConfig:
    """More than one GPU: nodes x gpus_per_node > 1 makes the Kubeflow train task launch a
    PyTorchJob (gir.steps.pytorchjob) whose workers run `gir train` under torchrun."""

    nodes: Annotated[int, Range(ge=1)] = 1
    gpus_per_node: Annotated[int, Range(ge=1)] = 1


@dataclass
class TrainConfig:
    """Optimisation. The default fine-tunes the shipped model in a few minutes on 2 CPU cores."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    steps: Positive = 600
    batch_size: Positive = 8
    crop: Annotated[int, Range(gt=0, multiple_of=16)] = 96
    resynth: Share = 0.5  # share of synthetic crops re-blurred with a fresh kernel (data.synth)
    # How often each data.synth kind is drawn for those fresh blurs, relative to 1 for a kind
    # not named ({motion: 2.0}: motion twice as often). Stored pairs and val/test keep the cycle.
    resynth_weights: Annotated[dict[SynthKind, float], WEIGHTS] = field(default_factory=dict)
    init: str = "pretrained"  # warm start: pretrained | none | a model directory | models:/ URI
    lr: Annotated[float, POSITIVE] = 3e-4
    lr_d: Annotated[float, POSITIVE] = 2e-4
    betas: Betas = field(default_factory=lambda: [0.9, 0.99])     # AdamW, generator
    betas_d: Betas = field(default_factory=lambda: [0.5, 0.999])  # AdamW, discriminator
    # linear warm-up steps; 0 = a tenth of train.steps, at most 100
    warmup: Annotated[int, Range(ge=0)] = 0
    lr_floor: Share = 0.01  # the cosine decay ends at this share of the peak lr
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    adversarial_start: int = 400
    ema_decay: Annotated[float, Range(ge=0, lt=1)] = 0.999
    amp: bool = True
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0
    # decoded training images kept per loader process (they stream from disk)
    cache_mb: Annotated[int, Range(ge=0)] = 128
    checkpoint_every: Positive = 200
    log_every: Positive = 20
    image_every: Positive = 300
    loss: LossConfig = field(default_factory=LossConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


@dataclass
class EvaluateConfig:
    """Scoring on the held-out test split."""

    split: Literal["test", "val"] = "test"
    max_images: int = 0
    references: list[ReferenceName] = field(default_factory=lambda: [
        "blurred", "unsharp", "wiener", "richardson_lucy", "pretrained"])


@dataclass
class RegisterConfig:
    """The MLflow model registry."""

    model_name: str = "gir-deblur"
    metric: Literal["psnr", "ssim"] = "psnr"
    # Promotion needs evidence: on paired per-image scores over the test split plus the
    # independent benchmark, the 95% bootstrap lower bound of the gain must exceed margin
    # (metric units) against the champion and the shipped model.
    margin: Annotated[float, Range(ge=0)] = 0.0
    bootstrap: Annotated[int, Range(ge=100)] = 2000
    benchmark_per_kind: Annotated[int, Range(ge=0)] = 1   # 0: the test split only
    benchmark_photos: str = ""   # "": data/benchmark when built, else the committed subset
    benchmark_max_side: Annotated[int, Range(ge=16)] = 512


@dataclass
class DetectConfig:
    """The blur detector: fitted on synthetic composites, tracked and registered like the model."""

    seed: int = 1234
    fit_per_image: Positive = 12  # composites per fitting photo (x4 for the blur-type classifier)
    eval_per_image: Positive = 12  # held-out composites per photo for the F-measure / accuracy
    model_name: str = "gir-detector"
    # The operating point: the share of sharp photos the detector may call blurred. gir detect,
    # rectify, the web page and S3 events decide with it; lower = fewer sharp photos touched.
    false_alarm_rate: Annotated[float, Range(ge=0, le=0.5)] = 0.05
    eval_per_kind: Positive = 2   # independent-benchmark blurs per photo and row (detect-eval)


@dataclass
class BatchConfig:
    """Batches (gir rectify|deblur over folders and prefixes, gir watch, S3 events)."""

    workers: Positive = 4
    min_side: Annotated[int, Range(ge=1)] = 16
    deadline_s: Annotated[float, Range(ge=0, msg="must be 0 (none) or a number of seconds")] = 0.0
    connect_timeout_s: Annotated[float, POSITIVE] = 5.0
    read_timeout_s: Annotated[float, POSITIVE] = 30.0
    attempts: Positive = 2
    storage_errors_to_stop: Positive = 3
    lease_s: Annotated[float, POSITIVE] = 600.0
    temp_max_age_s: Annotated[float, Range(ge=0, msg="must be 0 (never) or a number of seconds")] = (
        3600.0)


@dataclass
class ServeConfig:
    """`gir serve`: upload limits, admission control and how long results are kept."""

    max_upload_mb: Annotated[float, POSITIVE] = 100.0
    max_concurrent: Positive = 2     # uploads decoding / detecting / deblurring at once
    max_waiting: Annotated[int, Range(ge=0)] = 8   # queued beyond; more get 503 + Retry-After
    wait_seconds: Annotated[float, Range(ge=0)] = 120.0
    result_ttl_seconds: Annotated[float, POSITIVE] = 3600.0


@dataclass
class MlflowConfig:
    """Tracking. MLFLOW_TRACKING_URI in the environment wins over tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "gir"


@dataclass
class KubeflowConfig:
    """The cluster side of the compiled KFP pipeline: read by pipelines/ when it compiles
    (`gir pipeline compile|submit --set kubeflow.x=...`); no step reads it."""

    checkpoint_pvc: str = ""        # an existing claim for train's checkpoints; "" = one per run
    checkpoint_size: str = "20Gi"   # size of the per-run claim
    storage_class: str = ""         # "" = the cluster's default class
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    shm_size: str = "8Gi"           # /dev/shm (memory emptyDir) of train, for loader workers
    node_selector: dict[str, str] = field(default_factory=dict)   # train's pods
    tolerations: list[dict[str, Any]] = field(default_factory=lambda: [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    # seconds before train (and its PyTorchJob) is stopped; 0 = no limit
    train_timeout: Annotated[int, Range(ge=0, msg="must be 0 (none) or a number of seconds")] = (
        172800)


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
    batch: BatchConfig = field(default_factory=BatchConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
