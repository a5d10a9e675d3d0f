"""The one setting the components need: the image they run in (built from the Dockerfile).

`GIR_IMAGE` overrides it (e.g. registry.example.com/ml/gir:0.1.0); `gir pipeline ... --image`
overrides it per task at compile time. The default is the tag the README's `docker build` makes.
"""

import os

from gir import __version__

DEFAULT_IMAGE = f"gir:{__version__}"
IMAGE = os.environ.get("GIR_IMAGE") or DEFAULT_IMAGE


def preflight(tracking: bool = True) -> None:
    """First thing in every step, inside the image: the component code must be the image's
    (GIR_CODE_HASH, set at compile time, against the installed sources) and, on the
    container engines, the MLflow tracking URI a server. Either failure is one line, exit 2."""
    import sys
    from pathlib import Path

    import gir
    from components.fingerprint import code_hash
    from gir.errors import GirError

    expected = os.environ.get("GIR_CODE_HASH")
    if expected:
        found = code_hash(Path(gir.__file__).resolve().parents[1])
        if found != expected:
            sys.exit(f"gir: error: the component code (code {expected}, submitted from commit "
                     f"{os.environ.get('GIR_SUBMIT_COMMIT', 'unknown')}) does not match the "
                     f"image's gir (code {found}, commit "
                     f"{os.environ.get('GIR_GIT_COMMIT', 'unknown')}): rebuild the image "
                     "(make image) and pass it with --image or GIR_IMAGE")
    engine = os.environ.get("GIR_ENGINE", "")
    if tracking and engine:
        from gir.tracking.runs import CONTAINER_ENGINES, require_server_uri

        if engine in CONTAINER_ENGINES:
            try:
                require_server_uri(os.environ.get("MLFLOW_TRACKING_URI"), engine)
            except GirError as exc:
                sys.exit(f"gir: error: {exc}")
