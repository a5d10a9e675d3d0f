"""The one setting the components need: the image they run in (built from the Dockerfile).

`GIR_IMAGE` overrides it (e.g. registry.example.com/ml/gir:0.1.0); `gir pipeline ... --image`
overrides it per task at compile time. The default is the tag the README's `docker build` makes.
"""

import os

from gir import __version__

DEFAULT_IMAGE = f"gir:{__version__}"
IMAGE = os.environ.get("GIR_IMAGE") or DEFAULT_IMAGE
