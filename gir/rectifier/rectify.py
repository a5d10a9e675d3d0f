"""`gir rectify`: detect -> classify -> deblur, only for the photos that are blurred.

Each input gets OUTDIR/<stem>.png and OUTDIR/<stem>.json (the decisions: blur map, blurred
fraction, blur type and confidence, and what was done). A photo the detector calls sharp is
written back pixel for pixel ("untouched"); the model is loaded only when some photo needs it.
OUTDIR/rectify_report.json lists every input, including the ones that could not be read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gir.rectifier.deblur import deblur_files, output_name
from gir.data.imageio import write_text_atomic


class Rectifier:
    """The per-image transform handed to deblur_files: decide, then deblur or pass through."""

    def __init__(self, load_deblurrer, detector, out_dir: Path | None = None):
        self._load = load_deblurrer
        self.detector = detector
        self._deblurrer = None
        self.out_dir = out_dir
        self.reports: list[dict] = []

    def __call__(self, rgb: np.ndarray, src: str) -> np.ndarray:
        out, report = self.decide(rgb, src, str(self.out_dir / output_name(src)))
        write_text_atomic(self.out_dir / (Path(output_name(src)).stem + ".json"),
                          json.dumps(report, indent=2))
        self.reports.append(report)
        return out

    def decide(self, rgb: np.ndarray, src: str, output: str) -> tuple[np.ndarray, dict]:
        """(output image, decisions report) for one photo; writes nothing (batches write)."""
        from gir.rectifier.detect import detect

        start = time.perf_counter()
        det = detect(rgb, self.detector)
        report = {"input": str(src), "output": output,
                  "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), **det.report()}
        if det.blurred:
            if self._deblurrer is None:
                self._deblurrer = self._load()
            out = self._deblurrer(rgb)
            report["action"] = f"deblurred ({det.blur_type} blur, confidence {det.confidence:.2f})"
        else:
            out = rgb
            report["action"] = "untouched (not blurred)"
        report["seconds"] = round(time.perf_counter() - start, 3)
        return out, report


def rectify_files(inputs: list[str], out_dir: str | Path, load_deblurrer, detector,
                  progress: bool = True) -> dict:
    """Rectify each input into out_dir; returns (and writes) the batch report.

    load_deblurrer() is called once, on the first blurred photo; detector is a loaded Detector.
    """
    out_dir = Path(out_dir)
    rectifier = Rectifier(load_deblurrer, detector, out_dir)
    result = deblur_files(inputs, out_dir, None, progress=progress, transform=rectifier)
    summary = {"images": rectifier.reports,
               "failed": [{"input": src, "reason": why} for src, why in result.failed],
               "deblurred": sum(r["action"].startswith("deblurred") for r in rectifier.reports),
               "untouched": sum(r["action"].startswith("untouched") for r in rectifier.reports)}
    write_text_atomic(out_dir / "rectify_report.json", json.dumps(summary, indent=2))
    return summary
