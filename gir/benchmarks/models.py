"""`gir bench`: what each generator costs and what it buys, next to the classical references.

Per generator: parameters, GMACs at 1280x720 (counted by torch's FlopCounterMode on the meta
device, so nothing is computed), inference latency per megapixel (CPU always, CUDA when asked,
synchronized), training images/s at 256x256 crops, and PSNR/SSIM on the test split for every
trained model given. The references (blurred input, unsharp mask, Wiener and Richardson-Lucy with
the true kernel) are scored on the same pairs. Writes bench.md + bench.json; logs to MLflow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from gir.config import Params
from gir.data.imageio import write_text_atomic
from gir.errors import GirError


def count_gmacs(name: str, args: dict, width: int = 1280, height: int = 720) -> float:
    """Multiply-accumulates of one forward pass, in billions (FFTs are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    from gir.nn import build_generator

    with torch.device("meta"):
        model = build_generator(name, args)
        x = torch.empty(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9  # FLOPs = 2 x MACs for conv/matmul


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_seconds(model: torch.nn.Module, device: torch.device, width: int, height: int,
                      reps: int = 3) -> float:
    """Best-of-reps wall time of one forward pass on a width x height image (after a warm-up)."""
    model = model.to(device).eval()
    x = torch.rand(1, 3, height, width, device=device)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(reps):
            _sync(device)
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return min(times)


def onnx_seconds(model: torch.nn.Module, name: str, args: dict, width: int, height: int,
                 reps: int = 2) -> float | None:
    """Best-of-reps wall time of one onnxruntime pass (what `gir deblur` runs on a CPU) on a
    width x height image; None for a generator the ONNX exporter cannot take."""
    import tempfile

    from gir.rectifier.inference import save_generator
    from gir.rectifier.onnx_runtime import ONNX_FILE, OnnxDeblurrer, export_onnx

    with tempfile.TemporaryDirectory(prefix="gir-bench-onnx-") as tmp:
        save_generator(tmp, model, name, args)
        try:
            export_onnx(tmp, Path(tmp) / ONNX_FILE)
        except GirError:
            return None
        runner = OnnxDeblurrer(tmp)
        rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        runner.forward(rgb)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            runner.forward(rgb)
            times.append(time.perf_counter() - t0)
    return min(times)


def train_images_per_s(model: torch.nn.Module, device: torch.device, crop: int = 256,
                       batch: int = 2, steps: int = 3, amp: bool = True) -> float:
    """Generator-only training throughput (content loss + AdamW step), after one warm-up step."""
    from gir.nn import losses

    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, crop, crop, device=device)
    y = torch.rand(batch, 3, crop, crop, device=device)
    use_amp = amp and device.type == "cuda"
    for i in range(steps + 1):
        if i == 1:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = losses.charbonnier_loss(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _sig(x: float, digits: int = 4) -> float:
    """Round to significant digits: tiny test models and 700-GMAC ones both stay readable."""
    return float(f"{x:.{digits}g}")


def _parse_size(size: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise GirError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 16 or h < 16:
        raise GirError(f"--size {size!r}: at least 16x16")
    return w, h


def generator_rows(params: Params, names: list[str], size: str, device: str,
                   train_batch: int | None = None, train_crop: int = 256,
                   generator_args: dict | None = None) -> list[dict]:
    """One row of cost figures per generator: args from generator_args[name], else params'
    args for params' generator, else the constructor's defaults."""
    from gir.nn import build_generator, for_inference
    from gir.rectifier.inference import resolve_device

    w, h = _parse_size(size)
    devices = [torch.device("cpu")]
    dev = resolve_device(device)
    if dev.type == "cuda":
        devices.append(dev)
    rows = []
    for name in names:
        args = (generator_args or {}).get(
            name, params.model.generator_args if name == params.model.generator else {})
        torch.manual_seed(0)
        model = build_generator(name, args)
        row = {"generator": name, "args": args,
               "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
               "gmacs": _sig(count_gmacs(name, args, w, h)), "size": f"{w}x{h}",
               "threads": torch.get_num_threads(), "train_crop": train_crop}
        for d in devices:   # timed in the form the Deblurrer runs
            sec = inference_seconds(for_inference(model), d, w, h,
                                    reps=2 if d.type == "cpu" else 10)
            row[f"{d.type}_s_per_image"] = _sig(sec)
            row[f"{d.type}_ms_per_mp"] = _sig(1000 * sec / (w * h / 1e6))
            if d.type == "cpu":   # the runtime `gir deblur` uses on a CPU
                onnx_sec = onnx_seconds(model, name, args, w, h)
                row["onnx_s_per_image"] = _sig(onnx_sec) if onnx_sec else None
            batch = train_batch or (2 if d.type == "cpu" else 16)
            row[f"{d.type}_train_img_per_s"] = _sig(
                train_images_per_s(build_generator(name, args), d, train_crop, batch,
                                   steps=2 if d.type == "cpu" else 10))
        rows.append(row)
    return rows


def model_methods(named: dict[str, str | None], device: str, ensemble: int = 1) -> dict:
    """Scoring methods for {name: model reference}; with ensemble > 1 each model is scored twice,
    as NAME and as "NAME xN" (its self-ensemble of N views), so one table shows what it adds."""
    from gir.rectifier.ensemble import check_ensemble, with_ensemble
    from gir.rectifier.scoring import model_method
    from gir.tracking.resolve import resolve_deblurrer

    check_ensemble(ensemble)
    methods = {}
    for name, ref in named.items():
        deblurrer = resolve_deblurrer(ref, device, runtime="torch")   # scores: one runtime
        methods[name] = model_method(deblurrer)
        if ensemble > 1:
            methods[f"{name} x{ensemble}"] = model_method(with_ensemble(deblurrer, ensemble))
    return methods


def quality(models: list[str], data_dir: str | Path, split_manifest: str | Path,
            split: str, references: list[str], device: str, ensemble: int = 1) -> dict:
    """PSNR/SSIM on the split for each NAME=MODEL and each reference; overall and per kind."""
    from gir.data.dataset import load_split
    from gir.rectifier.scoring import REFERENCES, score, summarise

    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise GirError(f"--references: unknown {unknown[0]!r} (known: {', '.join(REFERENCES)})")
    pairs = load_split(data_dir, split_manifest, split)
    if not pairs:
        raise GirError(f"bench: the {split} split of {split_manifest} is empty")
    named = {}
    for spec in models:
        name, sep, where = spec.partition("=")
        named[name if sep else Path(spec).name] = where if sep else spec
    methods = model_methods(named, device, ensemble)
    methods.update({r: REFERENCES[r] for r in references})
    return {"split": split, "pairs": len(pairs), **summarise(score(methods, pairs, progress=True))}


def to_markdown(rows: list[dict], qual: dict | None) -> str:
    lines = []
    if rows:
        has_cuda = any("cuda_ms_per_mp" in r for r in rows)
        crop = rows[0]["train_crop"]
        head = ["generator", "params (M)", f"GMACs @{rows[0]['size']}", "CPU s/image",
                "CPU s/image (onnxruntime)", "CPU ms/MP", f"CPU train img/s @{crop}"]
        if has_cuda:
            head += ["CUDA ms/MP", f"CUDA train img/s @{crop}"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            cells = [r["generator"], r["params_m"], r["gmacs"], r["cpu_s_per_image"],
                     r.get("onnx_s_per_image") or "n/a", r["cpu_ms_per_mp"],
                     r["cpu_train_img_per_s"]]
            if has_cuda:
                cells += [r.get("cuda_ms_per_mp", ""), r.get("cuda_train_img_per_s", "")]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines += ["", f"CPU threads: {rows[0]['threads']}; FFTs are not counted in GMACs.", ""]
    if qual:
        kinds = sorted(qual["per_kind"])
        head = ["method", "PSNR", "SSIM"] + [f"{k} PSNR/SSIM" for k in kinds]
        lines += [f"Test quality ({qual['split']} split, {qual['pairs']} pairs, whole images):",
                  "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = sorted(qual["methods"], key=lambda m: -qual["methods"][m]["psnr"])
        for m in order:
            v = qual["methods"][m]
            cells = [m, f"{v['psnr']:.2f}", f"{v['ssim']:.4f}"]
            for k in kinds:
                kv = qual["per_kind"][k].get(m)
                cells.append(f"{kv['psnr']:.2f} / {kv['ssim']:.3f}" if kv else "-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bench(params: Params, generators: list[str] | None = None, models: list[str] = (),
          data_dir: str | Path = "data/processed",
          split_manifest: str | Path = "data/split/manifest.csv", size: str = "1280x720",
          device: str = "cpu", references: list[str] | None = None,
          out_dir: str | Path = "reports/bench", log_mlflow: bool = True,
          train_crop: int = 256, generator_args: dict | None = None, ensemble: int = 1) -> dict:
    """Run the benchmark; write bench.md/bench.json to out_dir; log them to MLflow.

    ensemble > 1 also scores every --model as its self-ensemble of that many views."""
    from gir.nn import generator_names
    from gir.rectifier.scoring import REFERENCES

    known = generator_names()
    names = known if generators is None else generators
    bad = [n for n in names if n not in known]
    if bad:
        raise GirError(f"--generators: unknown {bad[0]!r} (known: {', '.join(known)})")
    rows = generator_rows(params, names, size, device, train_crop=train_crop,
                          generator_args=generator_args)
    refs = list(REFERENCES) if references is None else references
    qual = None
    if models or refs:
        if not Path(split_manifest).exists():
            if models:
                raise GirError(f"{split_manifest}: no split manifest (run gir split first)")
        else:
            qual = quality(list(models), data_dir, split_manifest, params.evaluate.split, refs,
                           device, ensemble)
    result = {"generators": rows, "quality": qual, "markdown": to_markdown(rows, qual)}
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "bench.md", result["markdown"])
    write_text_atomic(out_dir / "bench.json",
                      json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2))
    if log_mlflow:
        _log(params, out_dir, rows, qual)
    return result


def _log(params: Params, out_dir: Path, rows: list[dict], qual: dict | None) -> None:
    from gir.tracking.runs import setup

    mlflow = setup(params.mlflow)
    with mlflow.start_run(run_name="bench"):
        mlflow.set_tag("kind", "bench")
        for r in rows:
            mlflow.log_metrics({f"{r['generator']}.{k}": v for k, v in r.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if qual:
            mlflow.log_metrics({f"test.{m}.{k}": float(np.round(v[k], 4))
                                for m, v in qual["methods"].items() for k in ("psnr", "ssim")})
        for name in ("bench.md", "bench.json"):   # what bench wrote, not the whole folder
            mlflow.log_artifact(str(out_dir / name), "bench")
