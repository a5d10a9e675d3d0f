"""Shared fixtures: isolated MLflow stores, a tiny config, and one tiny pipeline run per session.

Every test runs with telemetry off and MLflow pointed at a temporary SQLite store, so the
suite never touches the project's own mlflow.db nor mlruns/ (checked at the end of the
session) and never reaches the network.
"""

from __future__ import annotations

import os
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from tests.helpers import ROOT, KfpRecorder, tiny_params  # noqa: E402

# Tests mirror the packages (tests/data/ tests gir/data/, ...) and run in process, fast; the
# end-to-end ones (whole pipelines, real servers, subprocess training, DVC/KFP runs) live in
# tests/e2e/ and are marked `slow` from their folder: make test-fast leaves them out, make test
# runs everything.
SLOW_FOLDERS = {"e2e"}


def _runs_in_checkout() -> set[str]:
    """Run folders under the checkout's mlruns/ (mlruns/<experiment>/<run>)."""
    folder = ROOT / "mlruns"
    return {str(p.relative_to(folder)) for p in folder.glob("*/*")} if folder.is_dir() else set()


_RUNS_BEFORE = _runs_in_checkout()


def pytest_sessionfinish(session, exitstatus):
    """Fail the session if a test wrote MLflow artifacts into the checkout's mlruns/ (a test
    store keeps them beside its database in tmp_path: gir.tracking.runs.use_experiment)."""
    if hasattr(session.config, "workerinput"):     # an xdist worker: the controller checks
        return
    new = sorted(_runs_in_checkout() - _RUNS_BEFORE)
    if new:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        sys.stderr.write(f"\ntests wrote {len(new)} run folder(s) into {ROOT / 'mlruns'}: "
                         f"{', '.join(new[:5])} (use gir.tracking.runs.use_experiment)\n")


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/e2e/, and every browser test, slow."""
    for item in items:
        path = Path(str(item.fspath))
        if (SLOW_FOLDERS & set(path.parent.relative_to(ROOT).parts)
                or item.get_closest_marker("browser")):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store for one test: for subprocesses (the variable) and for
    clients made in this process (set_tracking_uri; _forget_tracking_uri undoes it)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(autouse=True)
def _forget_tracking_uri():
    """Tests that call mlflow.set_tracking_uri must not point later tests at their store."""
    yield
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole pipeline once, through the step functions, on the tiny config.

    Returns a namespace with the paths and the MLflow URI; tests must not modify it.
    """
    from types import SimpleNamespace

    from gir.steps.evaluate import evaluate
    from gir.steps.ingest import ingest
    from gir.steps.preprocess import preprocess
    from gir.steps.register import register
    from gir.steps.split import split
    from gir.steps.train import train
    from gir.steps.validate import validate

    root = tmp_path_factory.mktemp("tiny_run")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    cwd = os.getcwd()
    os.chdir(root)
    try:
        p = tiny_params()
        ingest(p, "data/raw")
        validate(p.validate, "data/raw", "data/validated", "reports/quality")
        preprocess(p.preprocess, "data/raw", "data/validated/manifest.csv", "data/processed")
        split(p.split, p.seed, "data/processed", "data/split")
        result = train(p, "data/processed", "data/split/manifest.csv", "models", "reports/train",
                       "checkpoints", engine="test")
        metrics = evaluate(p.evaluate, p.mlflow, "data/processed", "data/split/manifest.csv",
                           "models", "reports/metrics.json", "reports/eval_per_image.csv")
        decision = register(p, "data/processed", "data/split/manifest.csv", "models",
                            "reports/metrics.json", "reports/registration.json")
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
    return SimpleNamespace(root=root, uri=uri, params=p, run_id=result.run_id, metrics=metrics,
                           decision=decision)


@pytest.fixture
def kfp_api():
    """A recording fake of the KFP API on 127.0.0.1; yields (url, server)."""
    def start(status=200):
        handler = type("H", (KfpRecorder,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", server

    servers: list = []
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
