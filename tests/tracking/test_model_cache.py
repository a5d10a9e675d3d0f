"""The registry champion's weights cached by version and digest: a second `gir deblur` with a
champion reads the alias from the SQLite store and loads the cached files, not the pyfunc."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gir.tracking import model_cache, resolve


@pytest.fixture
def store(tiny_run, tmp_path, monkeypatch):
    """A copy of the tiny run's store whose registered version is @champion, as the project's
    mlflow.db in the current folder; the cache in tmp_path."""
    import mlflow

    shutil.copy(tiny_run.root / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GIR_CACHE", str(tmp_path / "cache"))
    mlflow.set_tracking_uri(uri)
    version = str(tiny_run.decision["version"])
    mlflow.MlflowClient().set_registered_model_alias("gir-deblur", "champion", version)
    return uri, version


def test_sqlite_lookup_finds_the_alias_and_names_the_version(store):
    uri, version = store
    found = model_cache.champion_in_sqlite(uri, "gir-deblur", "champion")
    assert found[0] == version and found[1].startswith(f"gir-deblur-v{version}-")
    assert model_cache.champion_in_sqlite(uri, "gir-deblur", "nobody") == ()
    assert model_cache.champion_in_sqlite("http://127.0.0.1:1", "gir-deblur", "champion") is None
    assert model_cache.champion_in_sqlite(uri + ".absent", "gir-deblur", "champion") is None


def test_second_resolution_loads_the_cached_weights(store, monkeypatch):
    _, version = store
    rgb = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    first = resolve.resolve_deblurrer(device="cpu", quiet=True)
    assert len(list((model_cache.cache_root() / "models").iterdir())) == 1

    def no_pyfunc(*a, **k):
        raise AssertionError("the cached champion should not load the pyfunc")

    monkeypatch.setattr(resolve, "_pyfunc_deblurrer", no_pyfunc)
    deblurrer, where, _ = resolve._resolve(None, "cpu", "torch", True, 1)
    assert where == f"models:/gir-deblur@champion (version {version})"
    assert np.array_equal(deblurrer(rgb), first(rgb))
    # On a CPU the default runtime runs the ONNX graph cached beside the weights: same pixels
    # within one grey level, no torch in the loop.
    from gir.rectifier.onnx_runtime import OnnxDeblurrer

    fast, where, _ = resolve._resolve(None, "cpu", "auto", True, 1)
    assert isinstance(fast, OnnxDeblurrer) and where.endswith(f"(version {version})")
    assert np.abs(fast(rgb).astype(int) - first(rgb).astype(int)).max() <= 1
    # ...and a new process resolves that cached champion without importing torch or MLflow
    # (about 1.4 s of a one-photo `gir deblur`).
    import subprocess
    import sys

    code = ("import sys; from gir.tracking import resolve; "
            "resolve._resolve(None, 'cpu', 'auto', True, 1); "
            "print(sorted(m for m in ('torch', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out


def test_a_version_made_again_gets_another_digest(store):
    import sqlite3

    uri, _ = store
    before = model_cache.champion_in_sqlite(uri, "gir-deblur", "champion")
    con = sqlite3.connect(uri.removeprefix("sqlite:///"))
    con.execute("UPDATE model_versions SET creation_time = creation_time + 1")
    con.commit()
    con.close()
    after = model_cache.champion_in_sqlite(uri, "gir-deblur", "champion")
    assert after[0] == before[0] and after[1] != before[1]
