"""`gir bench --detect`: how long `gir detect` takes on a 1280x720 photo.

Two numbers, because users meet both: detect() in a running process (what `gir rectify`, the
web page and S3 events pay per photo), and the `gir detect PHOTO` command end to end in a fresh
process (interpreter start, imports, loading the detector, reading the photo, the report). The
target is under 1 s for the command on 2 cores; wall time on a shared machine is inflated by
other jobs, so the CPU time of each and the load average are reported beside it.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gir.data.imageio import write_text_atomic

log = logging.getLogger("gir")
SIZE = (1280, 720)      # W, H
TARGET_S = 1.0          # the command, end to end (issue 38)


def bench_photo(image: str | Path | None, folder: Path) -> Path:
    """image resized to SIZE and saved as JPEG in folder (a smooth random photo without one)."""
    from PIL import Image

    if image is None:
        rng = np.random.default_rng(0)
        img = Image.fromarray((rng.random((45, 80, 3)) * 255).astype(np.uint8)).resize(
            SIZE, Image.BICUBIC)
    else:
        from gir.data.imageio import read_image

        img = Image.fromarray(read_image(str(image))[0]).resize(SIZE, Image.LANCZOS)
    path = folder / "detect_1280x720.jpg"
    img.convert("RGB").save(path, quality=92)
    return path


def in_process(photo: Path, repeats: int, detector_file: str | None) -> dict:
    """Median wall and CPU seconds of detect() on the photo, the detector loaded once."""
    from gir.data.imageio import read_image
    from gir.rectifier.detect import detect
    from gir.rectifier.detect_eval import seconds_per_photo
    from gir.tracking.resolve import resolve_detector

    detector = resolve_detector(detector_file)
    rgb, _ = read_image(str(photo))
    detect(rgb, detector)    # warm: first-call allocations are not what a server pays
    t = seconds_per_photo(detector, rgb, (rgb.shape[1], rgb.shape[0]), repeats)
    return {"wall_s": t["wall"], "cpu_s": t["cpu"]}


def command(photo: Path, repeats: int, detector_file: str | None) -> dict:
    """Median wall and CPU (user + system) seconds of `gir detect PHOTO` in a fresh process."""
    cmd = [sys.executable, "-m", "gir", "detect", str(photo)]
    if detector_file:
        cmd += ["--detector", str(detector_file)]
    subprocess.run(cmd, check=True, capture_output=True)   # warm the file cache once
    wall, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"wall_s": round(float(np.median(wall)), 3), "cpu_s": round(float(np.median(cpu)), 3),
            "runs_wall_s": [round(v, 3) for v in wall]}


def detect_speed_bench(out_dir: str | Path, image: str | Path | None = None, repeats: int = 5,
                       detector_file: str | None = None) -> dict:
    """Time detect() in process and `gir detect` end to end on a 1280x720 photo; write
    detect_speed.md and detect_speed.json under out_dir."""
    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        photo = bench_photo(image, Path(tmp))
        load_before = os.getloadavg()[0]
        result = {"size": f"{SIZE[0]}x{SIZE[1]}", "photo": str(image or "synthetic"),
                  "repeats": repeats, "cpus": os.cpu_count(),
                  "in_process": in_process(photo, repeats, detector_file),
                  "command": command(photo, repeats, detector_file), "target_s": TARGET_S}
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["command_under_target"] = result["command"]["wall_s"] < TARGET_S
    result["markdown"] = markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "detect_speed.json",
                      json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2))
    write_text_atomic(out / "detect_speed.md", result["markdown"])
    return result


def markdown(r: dict) -> str:
    load = r["load_average"]
    return "\n".join([
        f"## `gir detect` on a {r['size']} photo ({r['photo']}), median of {r['repeats']}",
        "",
        "| | wall s | CPU s |",
        "|---|---|---|",
        f"| detect() in a running process | {r['in_process']['wall_s']} | "
        f"{r['in_process']['cpu_s']} |",
        f"| `gir detect PHOTO`, end to end (target < {r['target_s']:g} s) | "
        f"{r['command']['wall_s']} | {r['command']['cpu_s']} |",
        "",
        f"{r['cpus']} CPUs; load average {load[0]} before, {load[1]} after (other jobs inflate "
        "wall time, not CPU time).", ""])
