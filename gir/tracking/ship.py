"""Packaging a trained deblurrer as the model shipped inside gir (gir/nn/shipped/).

`gir ship --model DIR` copies the EMA generator a tracked run wrote, records its sha256 in
SHA256SUMS (with the ONNX graph of the same weights, which CPU inference runs) and writes
MODEL_CARD.md from what the run logged in MLflow (data, synthesis,
steps, compute, metrics) plus the held-out benchmark table, so the card states only what was
measured. `pip install` then carries the weights as package data.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

from gir.config import MlflowConfig
from gir.data.blur import SYNTH_VERSION
from gir.data.imageio import write_text_atomic
from gir.errors import GirError
from gir.nn.shipped import CARD_FILE, ONNX, SHIPPED_DIR, SPEC, SUMS_FILE, WEIGHTS, file_sha256
from gir.rectifier.onnx_runtime import export_onnx
from gir.tracking.runs import read_run_id, setup

MAX_BYTES = 20_000_000   # package data stays small enough for pip and git


def run_facts(model_dir: Path, cfg: MlflowConfig) -> dict:
    """Params, metrics, tags and wall time of the run that trained model_dir (empty if unknown)."""
    run_id = read_run_id(model_dir)
    if not run_id:
        return {}
    mlflow = setup(cfg, experiment=False)
    try:
        run = mlflow.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - a missing store/run: say so, in one line
        raise GirError(f"{model_dir}: its MLflow run {run_id} is not in "
                       f"{mlflow.get_tracking_uri()} ({str(exc).splitlines()[0]})") from None
    info = run.info
    minutes = ((info.end_time or info.start_time) - info.start_time) / 60000
    return {"run_id": run_id, "params": dict(run.data.params), "metrics": dict(run.data.metrics),
            "tags": dict(run.data.tags), "minutes": round(minutes, 1)}


def corpus_summary(manifest: Path) -> str:
    """One line per package of the corpus manifest, with photo counts and licences."""
    if not manifest.exists():
        return "(corpus manifest not found)"
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    lines = [f"{len(rows)} photos from Debian packages (corpus/manifest.csv):"]
    for pkg in sorted({r["package"] for r in rows}):
        mine = [r for r in rows if r["package"] == pkg]
        lic = ", ".join(f"{k} x{v}" for k, v in Counter(r["licence"] for r in mine).items())
        lines.append(f"- `{pkg}` {mine[0]['version']}: {len(mine)} photos ({lic})")
    return "\n".join(lines)


def model_card(facts: dict, sha: str, spec: dict, size: int, heldout_md: str,
               corpus: str, history: str) -> str:
    p, m, t = facts.get("params", {}), facts.get("metrics", {}), facts.get("tags", {})
    synth = {k.removeprefix("data.synth."): v for k, v in p.items() if k.startswith("data.synth.")}
    train = {k.removeprefix("train."): p[k] for k in sorted(p) if k.startswith("train.")
             and (k.split(".")[1] in ("steps", "batch_size", "crop", "lr", "resynth",
                                      "resynth_weights", "init")
                  or k in ("train.loss.content", "train.loss.content_weight"))}
    test = {k.removeprefix("test."): v for k, v in m.items()
            if k.startswith("test.methods.") and k.endswith(".psnr")}
    return f"""# GIR shipped deblurrer

The model `gir deblur`, `rectify`, `serve` and the REST model use when no `--model` is given
and the tracking store has no `gir-deblur@champion`; `train.init: pretrained` starts from it.

| | |
|---|---|
| generator | `{spec.get('generator')}` {json.dumps(spec.get('args', {}))} |
| weights | `generator.pt` (EMA), {size / 1e6:.2f} MB |
| sha256 | `{sha}` |
| MLflow run | `{facts.get('run_id', 'unknown')}` (experiment of `profiles/pretrain.yaml`), git `{t.get('git_commit', 'unknown')}` |
| licence | MIT (the weights, like the code); training photos under their own licences (below) |

## Data
{corpus}

Never trained on: the `sample` source photos (scikit-image), or photos shipped inside other
Python packages (scikit-learn, matplotlib, ...): those are kept for evaluation.

## Synthesis
Synthesis version {t.get('synth_version', p.get('synth_version', SYNTH_VERSION))} (gir.data.blur.SYNTH_VERSION; 3: every kind blurred in linear
light with shot and read noise there, then the tone curve and JPEG; full / mild / identity
pairs; four motion-kernel families; polygonal apertures, spherical aberration and
depth-varying defocus). In the last phase every training crop is blurred afresh
(`train.resynth` = {train.get('resynth', '?')}) from these `data.synth` families (earlier
phases: see below):
`{json.dumps(synth, sort_keys=True)}`.

## Training and compute
{history}

Last phase: `{json.dumps(train, sort_keys=True)}`, {facts.get('minutes', '?')} min wall
on this machine ({t.get('world_size', '1')} process; 2 CPU cores, no GPU).

## Measured
Test split of the corpus (scenes no training crop came from), PSNR dB:
`{json.dumps({k: round(v, 2) for k, v in sorted(test.items())})}`

The independent benchmark (`gir bench --heldout`, docs/benchmarks.md): photos from Debian
packages no training step, sample or corpus uses, blurred by the training families and by a
held-out family training never draws from, with mild-blur and sharp-input rows; PSNR gains in
dB with 95% bootstrap intervals:

{heldout_md.strip() or '(not measured)'}
"""


def ship_model(model_dir: str | Path, heldout_md: str | Path | None = None,
               history: str = "", out_dir: Path | None = None,
               corpus_manifest: Path = Path("corpus/manifest.csv"),
               mlflow_cfg: MlflowConfig | None = None) -> Path:
    """Copy model_dir's generator into out_dir with SHA256SUMS and MODEL_CARD.md."""
    model_dir, out_dir = Path(model_dir), Path(out_dir or SHIPPED_DIR)
    weights, spec_path = model_dir / WEIGHTS, model_dir / SPEC
    if not weights.is_file() or not spec_path.is_file():
        raise GirError(f"{model_dir}: no trained generator here ({SPEC} + {WEIGHTS})")
    size = weights.stat().st_size
    if size > MAX_BYTES:
        raise GirError(f"{weights}: {size / 1e6:.1f} MB is over the {MAX_BYTES / 1e6:.0f} MB "
                       f"limit for package data")
    facts = run_facts(model_dir, mlflow_cfg or MlflowConfig())
    table = Path(heldout_md).read_text() if heldout_md else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in (weights, spec_path):
        tmp = out_dir / (src.name + ".part")
        shutil.copyfile(src, tmp)
        tmp.replace(out_dir / src.name)
    export_onnx(out_dir, out_dir / ONNX, label=str(model_dir))   # what CPU inference runs
    sha = file_sha256(out_dir / WEIGHTS)
    sums = "".join(f"{file_sha256(out_dir / n)}  {n}\n" for n in (WEIGHTS, SPEC, ONNX))
    write_text_atomic(out_dir / SUMS_FILE, sums)
    card = model_card(facts, sha, json.loads(spec_path.read_text()), size, table,
                      corpus_summary(corpus_manifest), history)
    write_text_atomic(out_dir / CARD_FILE, card)
    return out_dir
