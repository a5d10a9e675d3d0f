"""Batch throughput: images per second of `gir rectify|deblur SRC -o DST` over a prefix.

`gir bench --batch SRC` runs the real batch (gir.rectifier.batch.run_batch: listing, ledger,
reads, decode, detector, model, PNG encode, atomic writes) over every photo under SRC into a
fresh destination, so the number includes the I/O a bucket of photos costs. --batch-make N
first fills SRC with N synthetic photos of --batch-megapixels (the sample photos, resized and
JPEG-encoded, every third one motion-blurred so that rectify deblurs some and passes the rest).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def make_photos(dest: str, n: int, megapixels: float = 1.0, seed: int = 0) -> list[str]:
    """Write n JPEG photos of about `megapixels` (4:3) under dest; their relative paths."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    from gir.data.blur import degrade, random_blur
    from gir.data.sources.sample import load_sample_image
    from gir.data.storage import Location

    loc = Location(dest)
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    names = ("astronaut", "coffee", "chelsea", "rocket")
    bases = [np.asarray(Image.fromarray(load_sample_image(s)).resize((w, h), Image.LANCZOS))
             for s in names]
    rng = np.random.default_rng(seed)

    def one(i: int) -> str:
        img = bases[i % len(bases)]
        if i % 3 == 0:
            img = degrade(img, random_blur("motion", rng, motion_length=(9, 15)), rng)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        rel = f"bench/photo{i:04d}.jpg"
        loc.write(rel, buf.getvalue())
        return rel

    blurred = {i for i in range(n) if i % 3 == 0}
    out = [one(i) for i in sorted(blurred)]       # rng use in a fixed order
    with ThreadPoolExecutor(4) as pool:
        out += list(pool.map(one, [i for i in range(n) if i not in blurred]))
    return sorted(out)


def bench_batch(source: str, model, detector=None, *, task: str = "rectify",
                dest: str | None = None, out_dir: str | Path | None = None,
                threads: int | None = None) -> dict:
    """Run the batch over source into a fresh destination (dest/bench-<time>/, or a temporary
    folder) and return (and write to out_dir/batch.json and batch.md) its throughput."""
    import torch

    from gir.rectifier.batch import run_batch

    if threads:
        torch.set_num_threads(threads)
    tmp = None
    if dest is None:
        tmp = tempfile.TemporaryDirectory(prefix="gir-bench-batch-")
        dest = tmp.name
    else:
        dest = f"{dest.rstrip('/')}/bench-{time.strftime('%Y%m%d-%H%M%S')}/"
    cpu0 = _cpu_seconds()
    try:
        report = run_batch([source], dest, task, model, detector)
    finally:
        if tmp:
            tmp.cleanup()
    cpu = _cpu_seconds() - cpu0
    c = report["counts"]
    pixels = sum(w.get("pixels", 0) for w in report["written"])
    result = {"task": task, "source": source, "dest": None if tmp else dest,
              "model": report["model"], "images": c["written"], "failed": c["failed"],
              "seconds": report["seconds"], "images_per_second": report["images_per_second"],
              "megapixels_per_second": round(pixels / 1e6 / report["seconds"], 3)
              if pixels and report["seconds"] else None,
              # CPU time of this process: on a shared machine, images per CPU-second is what
              # the batch costs, images/s what it got.
              "cpu_seconds": round(cpu, 1),
              "images_per_cpu_second": round(c["written"] / cpu, 3) if cpu > 0 else None,
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "actions": _count(w.get("action") for w in report["written"])}
    result["markdown"] = (
        f"| task | images | failed | seconds | images/s | MP/s | CPU s | images/CPU s | "
        f"torch threads | CPUs | load |\n"
        f"|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {task} | {result['images']} | {result['failed']} | {result['seconds']} | "
        f"{result['images_per_second']} | {result['megapixels_per_second']} | "
        f"{result['cpu_seconds']} | {result['images_per_cpu_second']} | "
        f"{result['torch_threads']} | {result['cpus']} | {result['load_average'][0]} |\n")
    if out_dir:
        from gir.data.imageio import write_text_atomic

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "batch.json", json.dumps(result, indent=2))
        write_text_atomic(out_dir / "batch.md", result["markdown"])
    return result


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        key = str(v).split(" ")[0]
        out[key] = out.get(key, 0) + 1
    return out
