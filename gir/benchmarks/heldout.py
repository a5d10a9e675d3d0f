"""`gir bench --heldout`: the independent benchmark, a table the training generator cannot
flatter.

Photos from Debian packages that neither training, the sample nor the corpus uses
(gir.data.benchmark: `benchmarks/manifest.csv`, or the committed CI subset), blurred by the
training families *and* by a held-out family training never draws from (tremor motion,
ray-traced Zernike defocus, anisotropic Gaussians, tremor shake; gir.data.heldout_blur), all
rendered as a camera would. Reported per method: the PSNR gain over the blurred input per
group and kind with a 95% bootstrap interval, the generalisation gap (gain on the training
families minus gain on the held-out family, motion/defocus/Gaussian), mild motion, and on
sharp inputs the PSNR to the input and the mean tone shift in grey levels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gir.config import Params
from gir.data.benchmark import (
    GROUPS,
    benchmark_pairs,
    load_photos,
    photo_dir_for,
    photo_names,
    sharp_pairs,
)
from gir.data.imageio import write_text_atomic
from gir.errors import GirError
from gir.tracking.promotion import bootstrap_ci, bootstrap_gap_ci

KERNEL_KINDS = ("motion", "defocus", "gaussian")
HELDOUT_PHOTOS = photo_names()  # the benchmark's photos (no training or fitting uses them)
SHARP_REFERENCES = ("unsharp",)  # references that change a sharp photo (blurred is identity)


def heldout_pairs(params: Params, photos: list[str] | None = None, per_kind: int = 2,
                  max_side: int = 512, seed: int = 2026, photo_dir: str | Path | None = None,
                  groups: tuple[str, ...] = GROUPS) -> list:
    """The benchmark's pairs labelled by plain kind (motion / defocus / gaussian / shake /
    sharp), with row["row"] = "<group>/<kind>" and row["photo"]: for consumers that group by
    kind themselves (the detector's benchmark)."""
    import dataclasses

    pairs = benchmark_pairs(load_photos(photo_dir, max_side, photos), params.data.synth,
                            per_kind, seed, groups)
    return [dataclasses.replace(p, blur_kind=p.row["kind"], row={**p.row, "row": p.blur_kind})
            for p in pairs]


def score_sharp(methods: dict, pairs: list) -> list[dict]:
    """Each method on each sharp photo: PSNR to the input and the shift of its mean grey level
    (0-255; positive = brighter), so a deblurrer that darkens sharp photos shows it."""
    from gir.rectifier.scoring import psnr

    rows = []
    for pair in pairs:
        for name, method in methods.items():
            out = method(pair.blur, pair)
            if out is None:
                continue
            shift = float(out.astype(np.float64).mean() - pair.blur.astype(np.float64).mean())
            rows.append({"pair_id": pair.pair_id, "method": name,
                         "psnr_to_input": min(psnr(pair.blur, out), 100.0), "tone_shift": shift})
    return rows


def per_pair_gains(rows: list[dict], method: str, baseline: str = "blurred") -> dict:
    """{blur_kind: [gain per pair]}: method's PSNR minus the baseline's on the same pair."""
    base = {r["pair_id"]: r["psnr"] for r in rows if r["method"] == baseline}
    out: dict = {}
    for r in rows:
        if r["method"] == method and r["pair_id"] in base:
            out.setdefault(r["blur_kind"], []).append(r["psnr"] - base[r["pair_id"]])
    return out


def headline(gains: dict) -> dict:
    """The numbers the issue asks for, each with its 95% interval and number of pairs."""
    def pooled(group, kinds):
        return [g for k in kinds for g in gains.get(f"{group}/{k}", [])]

    train, held = pooled("train", KERNEL_KINDS), pooled("heldout", KERNEL_KINDS)
    return {"train_mdg": bootstrap_ci(train), "heldout_mdg": bootstrap_ci(held),
            "gap_mdg": bootstrap_gap_ci(train, held),
            "train_shake": bootstrap_ci(pooled("train", ["shake"])),
            "heldout_shake": bootstrap_ci(pooled("heldout", ["shake"])),
            "mild_motion": bootstrap_ci(pooled("mild", ["motion"])),
            "mild_heldout_motion": bootstrap_ci(pooled("mild_heldout", ["motion"]))}


def summarise_benchmark(rows: list[dict], sharp_rows: list[dict]) -> dict:
    """Per method: per-kind mean PSNR and gain (with CI), the headline, and sharp inputs."""
    methods = sorted({r["method"] for r in rows} | {r["method"] for r in sharp_rows})
    kinds = sorted({r["blur_kind"] for r in rows})
    out = {"methods": methods, "per_kind": {}, "headline": {}, "sharp": {}}
    for m in methods:
        gains = per_pair_gains(rows, m)
        for k in kinds:
            sel = [r["psnr"] for r in rows if r["method"] == m and r["blur_kind"] == k]
            if sel:
                out["per_kind"].setdefault(k, {})[m] = {
                    "psnr": round(float(np.mean(sel)), 4), "n": len(sel),
                    "gain": bootstrap_ci(gains.get(k, []))}
        if m != "blurred":
            out["headline"][m] = headline(gains)
        mine = [r for r in sharp_rows if r["method"] == m]
        if mine:
            shifts = [r["tone_shift"] for r in mine]
            out["sharp"][m] = {
                "psnr_to_input": bootstrap_ci([r["psnr_to_input"] for r in mine]),
                "psnr_to_input_min": round(min(r["psnr_to_input"] for r in mine), 3),
                "tone_shift": bootstrap_ci(shifts),
                "tone_shift_max_abs": round(max(abs(s) for s in shifts), 4), "n": len(mine)}
    return out


def _ci(c: dict | None, sign: bool = True) -> str:
    if not c or c.get("mean") is None:
        return "n/a"
    f = "{:+.2f}" if sign else "{:.2f}"
    return f"{f.format(c['mean'])} [{c['low']:.2f}, {c['high']:.2f}]"


HEADLINE_COLUMNS = (("train_mdg", "training families m/d/g"), ("heldout_mdg", "held-out m/d/g"),
                    ("gap_mdg", "gap (train - held-out)"), ("train_shake", "training shake"),
                    ("heldout_shake", "held-out shake"), ("mild_motion", "mild motion"),
                    ("mild_heldout_motion", "mild held-out motion"))


def to_markdown(result: dict) -> str:
    """Headline gains with 95% intervals, sharp inputs, then every group/kind."""
    lines = ["PSNR gain over the blurred input, dB, mean [95% bootstrap interval]:", "",
             "| method | " + " | ".join(t for _, t in HEADLINE_COLUMNS) + " |",
             "|---" * (len(HEADLINE_COLUMNS) + 1) + "|"]
    for m, h in result["headline"].items():
        lines.append(f"| {m} | " + " | ".join(_ci(h[k]) for k, _ in HEADLINE_COLUMNS) + " |")
    lines += ["", "Sharp inputs (the photo itself): PSNR to the input, dB, and the shift of the "
              "mean grey level (0-255):", "",
              "| method | PSNR to input | lowest | tone shift | largest abs shift | photos |",
              "|---|---|---|---|---|---|"]
    for m, s in result["sharp"].items():
        lines.append(f"| {m} | {_ci(s['psnr_to_input'], False)} | {s['psnr_to_input_min']:.2f}"
                     f" | {_ci(s['tone_shift'])} | {s['tone_shift_max_abs']:.2f} | {s['n']} |")
    lines += ["", "Per group and kind: mean PSNR (gain [95% interval]), pairs:", "",
              "| group/kind | " + " | ".join(result["methods"]) + " |",
              "|---" * (len(result["methods"]) + 1) + "|"]
    for k, per in result["per_kind"].items():
        cells = [("n/a" if m not in per else f"{per[m]['psnr']:.2f} ({_ci(per[m]['gain'])})")
                 for m in result["methods"]]
        n = max(v["n"] for v in per.values())
        lines.append(f"| {k} ({n}) | " + " | ".join(cells) + " |")
    lines += ["", f"{result['pairs']} pairs from {len(result['photos'])} photos "
              f"({', '.join(result['photos'])}; {result['photo_dir']}), {result['per_kind_draws']}"
              f" draws per group and kind, longest side {result['max_side']} px, seed "
              f"{result['seed']}, synthesis v{result['synth_version']}."]
    return "\n".join(lines)


def named_models(models: list[str] | None) -> dict:
    """NAME=REF specs as {name: ref}; a bare REF is named after itself, "gir" is the chain."""
    named = {}
    for spec in models or ["gir"]:
        name, sep, where = spec.partition("=")
        named[name] = where if sep else (None if spec == "gir" else spec)
    return named


def heldout_bench(params: Params, models: list[str], out_dir: str | Path,
                  references: list[str] | None = None, per_kind: int = 2, max_side: int = 512,
                  seed: int = 2026, device: str = "cpu", ensemble: int = 1,
                  photo_dir: str | Path | None = None, photos: list[str] | None = None) -> dict:
    """Score NAME=REF models and the references on the independent benchmark; write
    heldout.md / heldout.json (per-pair rows included, for paired comparisons)."""
    from gir.benchmarks.models import model_methods
    from gir.data.blur import SYNTH_VERSION
    from gir.rectifier.scoring import REFERENCES, score

    references = list(REFERENCES) if references is None else references
    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise GirError(f"--references: unknown {unknown[0]!r} (known: {', '.join(REFERENCES)})")
    if per_kind < 1:
        raise GirError(f"--per-kind: must be at least 1, got {per_kind}")
    loaded = load_photos(photo_dir, max_side, photos)  # bad photos fail before models load
    models_ = model_methods(named_models(models), device, ensemble)
    refs = {r: REFERENCES[r] for r in dict.fromkeys(["blurred", *references])}
    pairs = benchmark_pairs(loaded, params.data.synth, per_kind, seed, GROUPS)
    sharp = sharp_pairs(pairs)
    rows = score({**models_, **refs}, [p for p in pairs if p.blur_kind != "sharp"], progress=True)
    sharp_rows = score_sharp({**models_, **{r: refs[r] for r in SHARP_REFERENCES if r in refs}},
                             sharp)
    result = {"photos": list(loaded), "photo_dir": str(photo_dir_for(photo_dir)),
              "pairs": len(pairs), "per_kind_draws": per_kind, "max_side": max_side,
              "seed": seed, "synth_version": SYNTH_VERSION, "models": models or ["gir"],
              **summarise_benchmark(rows, sharp_rows)}
    result["markdown"] = to_markdown(result)
    out = Path(out_dir)
    write_text_atomic(out / "heldout.json", json.dumps(
        {**result, "rows": rows, "sharp_rows": sharp_rows}, indent=1, sort_keys=True))
    write_text_atomic(out / "heldout.md", result["markdown"] + "\n")
    return result
