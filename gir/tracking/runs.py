"""MLflow at the edge: where runs go, what every run is tagged with, and how steps share a run.

train starts the run and records its id next to the model (``run.json``); evaluate and
register reopen the same run, so one pipeline execution is one row in the MLflow UI whatever
engine ran it (``dvc``, ``kfp-local``, ``kfp``, ``cli``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gir.config import MlflowConfig, Params, flatten, to_dict
from gir.data.imageio import write_text_atomic

RUN_FILE = "run.json"
# The MLflow UI (3.x) opens an experiment of this kind on its runs, not on the GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
STEP_TAG, SWEEP_TAG = "gir.step", "gir.sweep_id"
# A RUNNING run of another machine that has not checkpointed for this long is dead.
STALE_AFTER_S = 6 * 3600


# Engines whose steps run in containers (a pod, a local container): a file store there is
# lost with the container. The pipelines set GIR_ENGINE on every task.
CONTAINER_ENGINES = ("kfp", "kfp-docker")
# Run tags from the environment the pipelines give every task: what ran, built from what.
PROVENANCE_ENV = {"GIR_GIT_COMMIT": "gir.image_commit", "GIR_IMAGE_REF": "gir.image",
                  "GIR_IMAGE_DIGEST": "gir.image_digest",
                  "GIR_SUBMIT_COMMIT": "gir.submitter_commit"}


def tracking_uri(cfg: MlflowConfig) -> str:
    """MLFLOW_TRACKING_URI (a team server) wins over params.yaml's embedded default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    if os.environ.get("GIR_ENGINE") in CONTAINER_ENGINES:
        require_server_uri(uri, os.environ["GIR_ENGINE"])
    return uri


def require_server_uri(uri: str | None, engine: str) -> str:
    """A tracking URI that outlives a container: not empty, not a file, not sqlite."""
    from gir.errors import GirError

    scheme = uri.split(":", 1)[0].lower() if uri and "://" in uri else ""
    if scheme in ("", "file", "sqlite"):
        raise GirError(
            f"MLflow tracking URI {uri or '(empty)'!r} on engine {engine}: a file inside the "
            "container is lost with it; set MLFLOW_TRACKING_URI (on a cluster: the gir-mlflow "
            "secret) to an MLflow server, e.g. http://mlflow:5000")
    return uri


def setup(cfg: MlflowConfig, experiment: bool = True):
    """Point MLflow at the tracking store (and experiment); returns the mlflow module."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging

    import mlflow

    for noisy in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    if experiment:
        exp = use_experiment(mlflow, cfg.experiment)
        if any(exp.tags.get(k) != v for k, v in EXPERIMENT_KIND.items()):
            for key, value in EXPERIMENT_KIND.items():
                mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, key, value)
    return mlflow


def artifacts_beside(uri: str, experiment: str) -> str | None:
    """For a SQLite store, mlruns/<experiment> next to its database file (as a file URI), else
    None (a server decides). MLflow's own default is ./mlruns under whatever directory the
    first run happened to start in, so a store used from a subfolder, or a test's store in a
    temporary folder, would scatter its artifacts into the current directory."""
    db = uri.removeprefix("sqlite:///").split("?")[0] if uri.startswith("sqlite:///") else ""
    if db in ("", ":memory:"):
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    return (Path(db).resolve().parent / "mlruns" / folder).as_uri()


def use_experiment(mlflow, name: str):
    """mlflow.set_experiment, creating a new experiment with its artifacts beside a SQLite
    store (artifacts_beside); an existing experiment keeps the location it was made with."""
    location = artifacts_beside(mlflow.get_tracking_uri(), name)
    if location and mlflow.get_experiment_by_name(name) is None:
        from mlflow.exceptions import MlflowException

        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException:   # another process created it meanwhile
            pass
    return mlflow.set_experiment(name)


def git_commit() -> str:
    """The commit the code ran at, with '-dirty' when the tree had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GIR_GIT_COMMIT", "unknown")


@dataclass(frozen=True)
class RunMeta:
    """Who launched a run, beyond its engine: the KFP run, the sweep and its parent run.

    Code in the same process passes it as an argument (the KFP train component has them as
    its inputs); the environment carries it only across a process boundary, to the CLI
    children of `gir sweep` and the pods of a PyTorchJob (:meth:`env`, :meth:`from_env`).
    """
    kfp_run_id: str = ""
    sweep_id: str = ""
    sweep_parent: str = ""

    ENV = {"kfp_run_id": "GIR_KFP_RUN_ID", "sweep_id": "GIR_SWEEP_ID",
           "sweep_parent": "GIR_SWEEP_PARENT"}

    @classmethod
    def from_env(cls) -> "RunMeta":
        return cls(**{field: os.environ.get(var, "") for field, var in cls.ENV.items()})

    def env(self) -> dict[str, str]:
        """The variables a child process reads back with from_env (set ones only)."""
        return {var: getattr(self, field) for field, var in self.ENV.items()
                if getattr(self, field)}

    def tags(self) -> dict[str, str]:
        tags = {"kfp_run_id": self.kfp_run_id, SWEEP_TAG: self.sweep_id,
                # nests the run under the sweep's parent in the UI
                "mlflow.parentRunId": self.sweep_parent}
        return {k: v for k, v in tags.items() if v}


def run_tags(engine: str, data_version: str, step: str = "train",
             meta: RunMeta | None = None) -> dict[str, str]:
    """What every run is filtered by in the UI: engine, commit, data version, step, sweep.
    meta: who launched it (default: what a launching process left in the environment)."""
    commit = git_commit()
    tags = {"engine": engine, "git_commit": commit, "data_version": data_version,
            "mlflow.source.git.commit": commit, STEP_TAG: step}
    tags.update({tag: os.environ[env] for env, tag in PROVENANCE_ENV.items()
                 if os.environ.get(env)})
    tags.update((meta or RunMeta.from_env()).tags())
    return tags


def params_hash(params: Params) -> str:
    """A short hash of all params: two runs with the same one were configured identically."""
    payload = json.dumps(to_dict(params), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:7]


def _short(value) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("_", "")


def run_name(params: Params, engine: str) -> str:
    """A legible run name: generator, width, steps, resynth, GAN loss, engine, params hash.

    e.g. ``nafnet-w16-900st-resynth0.5-lsgan-dvc-3fa9c1d``.
    """
    m, t = params.model, params.train
    parts = [_short(m.generator)]
    width = (m.generator_args or {}).get("width") or (m.generator_args or {}).get("base")
    if width:
        parts.append(f"w{width}")
    parts.append(f"{t.steps}st")
    if t.resynth:
        parts.append(f"resynth{_short(t.resynth)}")
    adv = t.loss.adversarial if t.loss.adversarial_weight > 0 else "none"
    parts.append("noadv" if adv == "none" else _short(adv))
    if t.init not in ("none", "pretrained"):
        parts.append("init")
    elif t.init == "pretrained":
        parts.append("pt")
    parts += [engine, params_hash(params)]
    return "-".join(parts)


def log_dataset(mlflow, manifest_path: str | Path, split: str, context: str,
                source: str | None = None) -> None:
    """Log the split manifest as the run's dataset input (the UI's Dataset column, lineage).

    Its digest is the data version of the whole split manifest (what run tags call
    data_version); source is where the data lives: the DVC path (or s3:// URL) of the manifest.
    """
    import warnings

    import mlflow.data

    from gir.data.manifest import data_version, read_manifest

    df = read_manifest(manifest_path)
    rows = df[df["split"] == split] if "split" in df.columns else df
    src = source or os.environ.get("GIR_DATA_SOURCE") or _repo_relative(manifest_path)
    cols = [c for c in ("pair_id", "scene", "source", "blur_kind", "width", "height", "split")
            if c in rows.columns]
    with warnings.catch_warnings():  # a local path "can be interpreted in multiple ways"
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(rows[cols].reset_index(drop=True), source=src,
                                          name=f"gir-pairs-{split}", digest=data_version(df))
        mlflow.log_input(dataset, context=context, tags={"split": split})


def _repo_relative(path: str | Path) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def process_tags() -> dict[str, str]:
    """Who is running this run now: host, pid and a heartbeat, for dead-run detection."""
    return {"gir.host": socket.gethostname(), "gir.pid": str(os.getpid()),
            "gir.heartbeat": str(int(time.time()))}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_dead_runs(mlflow, experiment_id: str, step: str = "train",
                  keep: str | None = None) -> list[str]:
    """Mark KILLED the RUNNING runs of this step whose process is gone; returns their ids.

    Dead: on this host, its pid no longer exists; elsewhere, no heartbeat for STALE_AFTER_S.
    keep (the run about to be resumed) is left alone.
    """
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id],
                              f"attributes.status = 'RUNNING' and tags.`{STEP_TAG}` = '{step}'")
    host, now, ended = socket.gethostname(), time.time(), []
    for r in runs:
        tags = r.data.tags
        if r.info.run_id == keep or not tags.get("gir.pid"):
            continue
        if tags.get("gir.host") == host:
            dead = int(tags["gir.pid"]) != os.getpid() and not _process_alive(int(tags["gir.pid"]))
        else:
            dead = now - float(tags.get("gir.heartbeat", 0)) > STALE_AFTER_S
        if dead:
            client.set_terminated(r.info.run_id, "KILLED")
            ended.append(r.info.run_id)
    return ended


def flat_params(params: Params) -> dict:
    """All of params.yaml as dotted keys; lists and dicts as JSON text."""
    return {k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for k, v in flatten(to_dict(params)).items()}


def log_params(mlflow, params: Params) -> None:
    """All of params.yaml, flattened to dotted keys (MLflow caps values at 6000 chars)."""
    items = list(flat_params(params).items())
    for i in range(0, len(items), 90):  # log_params takes at most 100 per call
        mlflow.log_params(dict(items[i: i + 90]))


def write_run_file(out_dir: str | Path, run_id: str, experiment_id: str) -> None:
    write_text_atomic(Path(out_dir) / RUN_FILE,
                      json.dumps({"run_id": run_id, "experiment_id": experiment_id}, indent=2))


def read_run_id(model_dir: str | Path) -> str | None:
    path = Path(model_dir) / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("run_id")


@contextmanager
def reopen_run(cfg: MlflowConfig, model_dir: str | Path) -> Iterator:
    """Continue the run that trained the model in model_dir (or a fresh one if unknown)."""
    mlflow = setup(cfg)
    run_id = read_run_id(model_dir)
    if run_id:
        try:
            mlflow.get_run(run_id)
        except Exception:  # the store was reset since training: do not fail the step for it
            run_id = None
    with mlflow.start_run(run_id=run_id) as run:
        yield mlflow, run


def model_card(params: Params, metrics: dict, run) -> str:
    """A registered version's description (Markdown): what it is, on what data, how good.

    Generator and the params that shape it, data version, git commit, test PSNR/SSIM per blur
    kind for the model and each reference, and the sha256 of pretrained weights it started from.
    """
    m, t = params.model, params.train
    tags = run.data.tags
    lines = [f"**{run.info.run_name}**: {m.generator} {json.dumps(m.generator_args or {})}, "
             f"{t.steps} steps × batch {t.batch_size} (crop {t.crop}), lr {t.lr:g}, "
             f"loss {t.loss.content} + fft {t.loss.fft_weight:g} + "
             f"{t.loss.adversarial if t.loss.adversarial_weight > 0 else 'no'} adversarial "
             f"({t.loss.adversarial_weight:g}), resynth {t.resynth:g}.",
             "",
             f"- data version `{tags.get('data_version', metrics.get('test_set', '?'))}`; "
             f"test set `{metrics.get('test_set', '?')}` ({metrics.get('pairs', '?')} pairs, "
             f"split `{metrics.get('split', '?')}`)",
             f"- git commit `{tags.get('git_commit', 'unknown')}`, engine "
             f"`{tags.get('engine', '?')}`, params hash `{params_hash(params)}`, "
             f"run `{run.info.run_id}`"]
    if tags.get("init_sha256"):
        lines.append(f"- started from {tags.get('init_source')} "
                     f"(sha256 `{tags['init_sha256']}`)")
    methods = sorted(metrics.get("methods", {}), key=lambda k: (k != "model", k))
    lines += ["", "Test PSNR (dB) / SSIM per blur kind:", "",
              "| kind | " + " | ".join(methods) + " |",
              "|---|" + "---|" * len(methods)]
    kinds = {**metrics.get("per_kind", {}), "all": metrics.get("methods", {})}
    for kind, by_method in kinds.items():
        cells = [f"{by_method[x]['psnr']:.2f} / {by_method[x]['ssim']:.3f}" if x in by_method
                 else "" for x in methods]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
