"""The one model resolver: which deblurrer or detector a command uses, and from where.

Code that runs a model (gir.rectifier) takes a loaded model and knows nothing of its origin;
every command (CLI, web page, REST, batch) asks here. A deblurrer reference is a model
directory, an ONNX file, an MLflow URI (``models:/NAME@ALIAS``, ``models:/NAME/3``,
``runs:/...``), ``pretrained`` (the shipped model), or nothing, meaning the default chain: the registry champion, then the model
shipped in the package. Looking a model up never creates a tracking store.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gir.config import MlflowConfig, Params, load_params
from gir.errors import GirError
from gir.nn.shipped import file_sha256, shipped_model_dir
from gir.tracking.model_cache import (
    cache_root,
    cached_champion,
    champion_in_sqlite,
    remember_champion,
)
from gir.tracking.promotion import CHAMPION
from gir.tracking.runs import setup, tracking_uri
from gir.tracking.warmstart import is_mlflow_uri, model_source_dir, resolve_init  # noqa: F401

log = logging.getLogger("gir")

if TYPE_CHECKING:   # the detector (and scipy under it) loads only when a command detects
    from gir.rectifier.detect import Detector

DEBLUR_MODEL = "gir-deblur"
DEFAULT_MODEL_URI = f"models:/{DEBLUR_MODEL}@{CHAMPION}"
# What `dvc repro` (stage detector) writes, relative to the project directory.
LOCAL_DETECTOR = Path("models/detector") / "detector.json"   # gir.rectifier.detect.DETECTOR_FILE


def _say(msg: str) -> None:
    log.info("gir: %s", msg)


def store_exists(cfg: MlflowConfig) -> bool:
    """False when the tracking store is a local file/SQLite store that does not exist yet."""
    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).exists()
    if uri.startswith("file:") or "://" not in uri:
        return Path(uri.removeprefix("file://").removeprefix("file:")).exists()
    return True   # a tracking server: asked (briefly) whether it has the model


@contextmanager
def brief_http():
    """A tracking server that is down answers within seconds, not after MLflow's retries."""
    brief = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {k: os.environ.get(k) for k in brief}
    for k, v in brief.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_PARAMS_FROM: dict = {"path": None, "overrides": [], "strict": False}


def use_params(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
               strict: bool = False) -> None:
    """Which params the lookups here read (a verb's --params/--set): the tracking store, the
    registered names, the detector's operating point. Default: params.yaml in the current
    folder, if any. strict: a file that does not load is an error, not a fallback."""
    _PARAMS_FROM.update(path=path, overrides=list(overrides or []), strict=strict)


def _project_params() -> Params | None:
    try:
        return load_params(_PARAMS_FROM["path"], _PARAMS_FROM["overrides"])
    except GirError:
        if _PARAMS_FROM["strict"]:
            raise
        return None


def champion_version(name: str, cfg: MlflowConfig) -> str | None:
    """The version behind NAME@champion, or None (quietly) when the store does not have it."""
    if not store_exists(cfg):
        return None   # no store here: do not import MLflow, let alone create one
    with brief_http():
        setup(cfg, experiment=False)
        from mlflow import MlflowClient

        try:
            return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
        except Exception:  # noqa: BLE001 - no model, no alias, no server: all mean "not here"
            return None


# ----------------------------------------------------------------------------- deblurrer

def resolve_deblurrer(model: str | os.PathLike | None = None, device: str = "auto",
                      runtime: str = "auto", quiet: bool = False, ensemble: int = 1):
    """A loaded deblurrer (call it on uint8 RGB) for a model reference; says which in one line.

    runtime="onnx": model is an exported .onnx file (or a directory holding generator.onnx),
    run on CPU by onnxruntime. runtime="auto": onnxruntime for the models gir keeps an ONNX
    graph of (the shipped model, cached registry champions) when the device is a CPU, PyTorch
    otherwise. ensemble: views of the self-ensemble (1, 2, 4 or 8).
    """
    return _resolve(model, device, runtime, quiet, ensemble)[0]


def resolve_deblurrer_with_source(model: str | os.PathLike | None = None, device: str = "auto",
                                  runtime: str = "auto", quiet: bool = False,
                                  ensemble: int = 1):
    """(deblurrer, version): resolve_deblurrer's model plus a string naming exactly which one
    answered (and its self-ensemble, which changes the outputs), what batch ledgers record so
    that --reprocess can tell outputs of another model."""
    deblurrer, where, views = _resolve(model, device, runtime, quiet, ensemble)
    return deblurrer, model_version(where) + views


def _resolve(model, device: str, runtime: str, quiet: bool, ensemble: int):
    """(deblurrer set to the ensemble, where it came from, the ensemble's words or "")."""
    from gir.rectifier.ensemble import check_ensemble, with_ensemble

    check_ensemble(ensemble)   # before loading anything
    deblurrer, where = _load_deblurrer(model, device, runtime)
    deblurrer = with_ensemble(deblurrer, ensemble)
    views = f", self-ensemble of {ensemble} views" if ensemble > 1 else ""
    if not quiet:
        _say(f"model: {where}{views}")
    return deblurrer, where, views


def model_version(where: str) -> str:
    """A stable name for a loaded model: registry models by version number, files by content."""
    import hashlib
    import re

    ref = where.removesuffix(" (onnx)")
    if ref.startswith("the pretrained model shipped with gir"):
        shipped = shipped_model_dir()
        if shipped is not None:   # the same weights in any install: name them by content
            from gir.nn.shipped import WEIGHTS

            return f"shipped sha256:{file_sha256(shipped / WEIGHTS)[:12]}"
    path = Path(ref)
    if path.exists():
        files = sorted(f for f in (path.rglob("*") if path.is_dir() else [path])
                       if f.is_file() and f.suffix in (".pt", ".onnx", ".json"))
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.read_bytes())
        return f"{where} sha256:{digest.hexdigest()[:12]}"
    m = re.match(r"^models:/([^/@\s]+)@(\S+) \(version (\d+)\)$", where)
    if m:
        return f"models:/{m[1]}/{m[3]}"
    m = re.match(r"^models:/([^/@\s]+)@(\S+)$", where)
    if m:   # an alias given by hand: pin it to the version it points at now
        with brief_http():
            from mlflow import MlflowClient

            try:
                version = MlflowClient().get_model_version_by_alias(m[1], m[2]).version
                return f"models:/{m[1]}/{version}"
            except Exception:  # noqa: BLE001 - loaded a moment ago; keep the alias
                return where
    return where


def on_cpu(device: str) -> bool:
    """Whether device names the CPU, without importing torch where no GPU driver is present."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    if not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return True
    import torch

    return not torch.cuda.is_available()


def deblurrer_from_dir(model_dir: Path, device: str, runtime: str, onnx_kept: bool):
    """The model in model_dir on device. onnx_kept: gir made its generator.onnx from these very
    weights (the shipped model, a cached champion), so runtime "auto" may run that graph."""
    from gir.rectifier.onnx_runtime import ONNX_FILE, OnnxDeblurrer, onnxruntime_available

    if (runtime == "auto" and onnx_kept and (model_dir / ONNX_FILE).is_file()
            and on_cpu(device) and onnxruntime_available()):
        log.debug("gir: running %s with onnxruntime", model_dir / ONNX_FILE)
        return OnnxDeblurrer(model_dir)
    from gir.rectifier.inference import Deblurrer

    return Deblurrer.from_dir(model_dir, device)


def _load_deblurrer(model, device: str, runtime: str):
    if runtime not in ("auto", "torch", "onnx"):
        raise GirError(f"runtime: {runtime!r} is not one of auto, torch, onnx")
    if runtime == "onnx":
        from gir.rectifier.onnx_runtime import OnnxDeblurrer

        if model is None:
            raise GirError("--runtime onnx needs --model PATH.onnx (make it with gir export --onnx)")
        return OnnxDeblurrer(model), f"{model} (onnx)"
    if model is not None:
        ref = str(model)
        if ref == "pretrained":
            shipped = shipped_model_dir()
            if shipped is None:
                raise GirError("--model pretrained: this install ships no pretrained model")
            return (deblurrer_from_dir(shipped, device, runtime, onnx_kept=True),
                    "the pretrained model shipped with gir")
        if Path(ref).is_dir():
            return deblurrer_from_dir(Path(ref), device, runtime, onnx_kept=False), ref
        if is_mlflow_uri(ref):
            return _pyfunc_deblurrer(ref, MlflowConfig()), ref
        raise GirError(f"--model {ref}: neither a model directory nor an MLflow model URI")
    params = _project_params()
    cfg = params.mlflow if params else MlflowConfig()
    name = params.register.model_name if params else DEBLUR_MODEL
    found = champion_in_sqlite(tracking_uri(cfg), name, CHAMPION)   # no MLflow import
    if found is None:   # not a SQLite store (or not one this reader knows): ask MLflow
        version = champion_version(name, cfg)
    else:               # () when the store has no champion
        version = found[0] if found else None
    if version is not None:
        uri = f"models:/{name}@{CHAMPION}"
        return (_champion_deblurrer(uri, cfg, found, device, runtime),
                f"{uri} (version {version})")
    shipped = shipped_model_dir()
    if shipped is not None:
        return deblurrer_from_dir(shipped, device, runtime, onnx_kept=True), (
            f"the pretrained model shipped with gir (no models:/{name}@{CHAMPION} in "
            f"{tracking_uri(cfg)})")
    raise GirError(f"no model given, no models:/{name}@{CHAMPION} in the tracking store "
                   f"{tracking_uri(cfg)} and no shipped model: pass --model")


def _champion_deblurrer(uri: str, cfg: MlflowConfig, found: tuple | None, device: str,
                        runtime: str = "auto"):
    """The champion's Deblurrer: from the local cache of that version's weights (and the ONNX
    graph made from them) when the store was read directly (found = (version, digest)), else
    (and then cached) through MLflow."""
    if found:
        cached = cached_champion(*found)
        if cached is not None:
            return deblurrer_from_dir(cached, device, runtime, onnx_kept=True)
    deblurrer = _pyfunc_deblurrer(uri, cfg)
    if found:
        remember_champion(*found, uri)
    return deblurrer


def _pyfunc_deblurrer(uri: str, cfg: MlflowConfig):
    from gir.tracking.pyfunc import load_pyfunc_deblurrer

    setup(cfg, experiment=False)
    return load_pyfunc_deblurrer(uri)


# ----------------------------------------------------------------------------- detector

_DETECTORS: dict[tuple, Detector] = {}


def resolve_detector(path: str | os.PathLike | None = None) -> Detector:
    """The detector to use, the first found of:

    1. path, else $GIR_DETECTOR (a detector.json);
    2. models/detector/detector.json in the current directory (what `dvc repro` just trained);
    3. the registered champion, models:/<detect.model_name>@champion, if the tracking store
       (params.yaml here, or MLFLOW_TRACKING_URI) exists and has it;
    4. the built-in fit (the default detect.* settings), cached in $GIR_CACHE, so that
       `gir detect` works on a fresh install before any pipeline run.
    Each is loaded once per process.
    """
    path = path or os.environ.get("GIR_DETECTOR") or (
        LOCAL_DETECTOR if LOCAL_DETECTOR.is_file() else None)
    if path:
        resolved = Path(path).resolve()
        key = ("file", str(resolved), resolved.stat().st_mtime_ns if resolved.exists() else 0)
        if key not in _DETECTORS:
            from gir.rectifier.detect import load_detector

            _DETECTORS[key] = load_detector(path)
        return _at_operating_point(_DETECTORS[key])
    key = ("default", os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI"))
    if key not in _DETECTORS:
        _DETECTORS[key] = registered_detector() or builtin_detector()
    return _at_operating_point(_DETECTORS[key])


def _at_operating_point(detector: Detector) -> Detector:
    """The detector deciding at params.yaml's detect.false_alarm_rate (the schema default
    without a project): the one operating point gir detect, rectify, serve and events share."""
    from gir.rectifier.detect import with_operating_point

    params = _project_params() or Params()
    return with_operating_point(detector, params.detect.false_alarm_rate)


def registered_detector() -> Detector | None:
    """The registry's champion detector; None, quietly, when there is no store or no champion."""
    params = _project_params()
    if params is None:
        return None
    name = params.detect.model_name
    # A SQLite store is read directly and the champion's fit cached by version digest, as for
    # the deblurrer: importing MLflow alone would cost `gir detect` about 3 s.
    found = champion_in_sqlite(tracking_uri(params.mlflow), name, CHAMPION)
    if found == () or (found is None and champion_version(name, params.mlflow) is None):
        return None
    from gir.rectifier.detect import load_detector, save_detector

    cached = cache_root() / "detectors" / f"{found[1]}.json" if found else None
    if cached is not None and cached.is_file():
        return load_detector(cached)
    from gir.tracking.pyfunc import load_registered_detector

    try:
        with brief_http():
            detector = load_registered_detector(f"models:/{name}@{CHAMPION}")
    except Exception as exc:  # noqa: BLE001 - there but unusable: say so once, fall back
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _say(f"not using models:/{name}@{CHAMPION}: {reason}")
        return None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_detector(detector, cached)   # written atomically; only a shortcut
        except OSError:
            pass
    return detector


def builtin_detector() -> Detector:
    """The built-in fit; a seam the tests replace."""
    from gir.rectifier.detect_fit import cached_fit

    return cached_fit()
