"""The embedded default source: colour photographs shipped inside scikit-image.

Read straight from scikit-image's data folder (never through its downloader), so it works
offline on any machine. The motorcycle stereo pair is one scene: its halves never straddle
a split.
"""

from __future__ import annotations

from pathlib import Path

from gir.config import Params
from gir.errors import GirError
from gir.data.imageio import read_image
from gir.data.sources.synthetic import cap_size, synthesize_pairs

# name -> (file in skimage/data, scene, attribution)
SAMPLE_IMAGES = {
    "astronaut": ("astronaut.png", "astronaut", "NASA (public domain)"),
    "chelsea": ("chelsea.png", "chelsea", "Stefan van der Walt (CC0)"),
    "coffee": ("coffee.png", "coffee", "Rachel Michetti (CC0)"),
    "rocket": ("rocket.jpg", "rocket", "SpaceX (CC0)"),
    "immunohistochemistry": ("ihc.png", "immunohistochemistry", "Sertac Kutlu (CC0)"),
    "retina": ("retina.jpg", "retina", "Hakkeem (CC BY 4.0)"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "hubble_deep_field", "NASA (public domain)"),
    "motorcycle_left": ("motorcycle_left.png", "motorcycle", "Middlebury stereo 2014"),
    "motorcycle_right": ("motorcycle_right.png", "motorcycle", "Middlebury stereo 2014"),
    # Grey photographs, converted to RGB; kept out of the default list but available.
    "camera": ("camera.png", "camera", "scikit-image (public domain)"),
    "brick": ("brick.png", "brick", "scikit-image (CC0)"),
    "grass": ("grass.png", "grass", "scikit-image (CC0)"),
    "gravel": ("gravel.png", "gravel", "scikit-image (CC0)"),
}


def skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_sample_image(name: str):
    """One shipped photograph as RGB uint8."""
    if name not in SAMPLE_IMAGES:
        raise GirError(
            f"data.sample.images: unknown image {name!r} (known: {', '.join(SAMPLE_IMAGES)})"
        )
    return read_image(skimage_data_dir() / SAMPLE_IMAGES[name][0])[0]


def ingest_sample(params: Params, out_dir: Path) -> list[dict]:
    """Blur each configured photo per_image times; one row per pair."""
    cfg = params.data.sample
    rows: list[dict] = []
    for name in cfg.images:
        sharp = cap_size(load_sample_image(name), cfg.max_side)
        _, scene, attribution = SAMPLE_IMAGES[name]
        rows += synthesize_pairs(
            sharp, name, scene, "sample", out_dir, params.data.synth, params.seed,
            extra={"attribution": attribution, "license": attribution.split("(")[-1].rstrip(")"),
                   "source_url": f"skimage.data:{SAMPLE_IMAGES[name][0]}"},
        )
    return rows
