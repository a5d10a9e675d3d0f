"""Time and peak memory of tiled inference on one huge image (run by hand, not a test).

    python -m gir.benchmarks.tiling --size 8192 [--model models/deblur/] [--threads 2]

Without --model it uses a freshly initialised default generator (params.yaml's model), which
costs exactly what a trained one does. Peak RSS is the whole process's (ru_maxrss), input and
output arrays included; run one size per process.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main(argv=None) -> None:
    import numpy as np
    import torch

    from gir.data.sources.sample import load_sample_image
    from gir.rectifier.inference import Deblurrer

    p = argparse.ArgumentParser(prog="python -m gir.benchmarks.tiling")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--model", default=None, help="model directory (default: fresh generator)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.model:
        deblurrer = Deblurrer.from_dir(args.model, "cpu", tile=args.tile, progress=True)
    else:
        from gir.config import load_params
        from gir.nn import build_generator

        m = load_params("params.yaml").model
        torch.manual_seed(0)
        deblurrer = Deblurrer(build_generator(m.generator, m.generator_args), "cpu",
                              tile=args.tile, progress=True)
    photo = load_sample_image("astronaut")
    reps = -(-args.size // photo.shape[0])
    image = np.tile(photo, (reps, reps, 1))[:args.size, :args.size]
    start = time.perf_counter()
    out = deblurrer(image)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": args.size, "tile": deblurrer.tile_size(*image.shape[:2]),
                      "overlap": deblurrer.overlap, "threads": args.threads,
                      "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb),
                      "output_shape": list(out.shape)}))


if __name__ == "__main__":
    main()
