"""`gir rectify`: detect -> classify -> deblur, only for the photos that are blurred.

:meth:`Rectifier.rectify` is the one detect-then-deblur rule: `gir rectify` (files, folders,
prefixes, through gir.rectifier.batch), `gir watch`, the S3-event endpoint and the web page all
call it. The detector decides (at its operating point, ``detect.false_alarm_rate``); this
module only acts on the decision and says why, in words a person can read.

The batch writes each input's DST/<rel>.png and DST/<rel>.json (the decisions: blur map,
blurred fraction, blur type and confidence, what was done and why), and DST/_gir/report.json.
A photo the detector calls sharp is written back pixel for pixel ("untouched"); the model is
loaded only when some photo needs it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

# Defocus and Gaussian are both all-round blur; on real photos the detector tells them apart
# on about half (docs/detector.md, "What the type can and cannot tell"), so both are named.
_LOOKS_ALIKE = {"defocus": "Gaussian", "gaussian": "defocus"}


def blur_type_note(blur_type: str | None) -> str:
    """What a person should know about a reported blur type ("" when nothing needs saying)."""
    alike = _LOOKS_ALIKE.get(blur_type or "")
    return f"or {alike}: the two look alike on real photos" if alike else ""


def reason_of(det) -> str:
    """Why the detector called the photo blurred or sharp, in one sentence for the page."""
    given = getattr(det, "reason", None)   # a detector that explains itself is quoted as is
    if given:
        return str(given)
    if det.flat_fraction >= 1.0:
        return "nothing to judge blur by: the whole photo is flat (no texture or edges)"
    share = f"{det.blurred_fraction:.0%} of the textured tiles look blurred"
    flat = f" ({det.flat_fraction:.0%} of the photo is flat)" if det.flat_fraction >= 0.05 else ""
    if det.blurred:
        return f"{share}{flat}; {det.blur_type} blur, confidence {det.confidence:.0%}"
    return f"only {share}{flat}: sharp enough to leave as it is"


@dataclass
class Decision:
    """What the one rule decided for one photo, and why."""

    detection: object          # gir.rectifier.detect.Detection
    deblurred: bool
    action: str
    reason: str
    ensemble: int | None       # views of the self-ensemble that deblurred it (None: untouched)
    seconds: float

    def report(self, with_map: bool = True) -> dict:
        """The JSON decisions (as written next to each output and answered by the web page)."""
        det = self.detection.report()
        if not with_map:
            det.pop("map", None)
        return {**det, "blur_type_note": blur_type_note(det.get("blur_type")),
                "action": self.action, "reason": self.reason,
                "ensemble": self.ensemble, "seconds": round(self.seconds, 3)}


class Rectifier:
    """Decide, then deblur or pass through.

    load_deblurrer() is called on the first blurred photo only. `lock`, when given, is held
    around each deblurring (the web server runs one model call at a time).
    """

    def __init__(self, load_deblurrer, detector, lock=None):
        self._load = load_deblurrer
        self.detector = detector
        self._deblurrer = None
        self.lock = lock or contextlib.nullcontext()

    def rectify(self, rgb: np.ndarray, wrap=None) -> tuple[np.ndarray, Decision]:
        """(output image, decision) for one photo: the one detect-then-deblur rule.

        wrap(deblurrer) -> deblurrer, when given, adapts the loaded model for this photo
        (the web page's per-request self-ensemble)."""
        from gir.rectifier.detect import detect

        start = time.perf_counter()
        det = detect(rgb, self.detector)
        views = None
        if det.blurred:
            with self.lock:
                if self._deblurrer is None:
                    self._deblurrer = self._load()
                model = wrap(self._deblurrer) if wrap else self._deblurrer
                out = model(rgb)
            views = int(getattr(model, "ensemble", 1) or 1)
            extra = f", {views}-view self-ensemble" if views > 1 else ""
            action = f"deblurred ({det.blur_type} blur, confidence {det.confidence:.2f}{extra})"
        else:
            out, action = rgb, "untouched (not blurred)"
        return out, Decision(det, bool(det.blurred), action, reason_of(det), views,
                             time.perf_counter() - start)

    def decide(self, rgb: np.ndarray, src: str, output: str) -> tuple[np.ndarray, dict]:
        """(output image, decisions report) for one photo; writes nothing (batches write)."""
        out, decision = self.rectify(rgb)
        report = {"input": str(src), "output": output,
                  "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), **decision.report()}
        return out, report
