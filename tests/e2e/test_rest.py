"""REST: `mlflow models serve` serves the registered champion; any image size in, same size out.

Starts the real server (`--env-manager local`, loopback, free port) against the tiny run's
tracking store, then POSTs the JSON the README's curl example sends.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np

from gir.data.imageio import decode_image, encode_png
from gir.data.sources.sample import load_sample_image
from tests.helpers import free_port, serving


def post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(payload).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def test_mlflow_models_serve_deblurs_any_size(tiny_run, tmp_path, monkeypatch):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/gir-deblur@champion",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    # mlflow execs `uvicorn` by name: the venv's bin must be on PATH.
    env = {"MLFLOW_TRACKING_URI": tiny_run.uri,
           "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    with serving(cmd, url + "/ping", tmp_path / "serve.log", cwd=tiny_run.root, env=env,
                 timeout=120):
        sizes = [(97, 150), (64, 64)]
        images = [load_sample_image("coffee")[:h, :w] for h, w in sizes]
        b64 = [base64.b64encode(encode_png(img)).decode() for img in images]
        body = post(url + "/invocations",
                    {"dataframe_split": {"columns": ["image"], "data": [[b] for b in b64]}})
        rows = body["predictions"]
        assert len(rows) == 2
        for (h, w), row in zip(sizes, rows):
            out, _ = decode_image(base64.b64decode(row["image"]))
            assert out.shape == (h, w, 3)
        assert np.abs(decode_image(base64.b64decode(rows[0]["image"]))[0].astype(int)
                      - images[0]).mean() < 60
        # The self-ensemble is a request parameter: what `gir deblur --ensemble 2` computes.
        views = post(url + "/invocations", {"dataframe_split": {"columns": ["image"],
                                                                "data": [[b64[0]]]},
                                            "params": {"ensemble": 2}})["predictions"]
        served = decode_image(base64.b64decode(views[0]["image"]))[0].astype(int)
        from gir.tracking.resolve import resolve_deblurrer

        monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_run.uri)
        local = resolve_deblurrer("models:/gir-deblur@champion", "cpu", quiet=True,
                                  ensemble=2)(images[0])
        assert np.abs(served - local).max() <= 1
        plain = decode_image(base64.b64decode(rows[0]["image"]))[0]
        assert np.abs(served - plain).max() > 1   # and not the plain answer
