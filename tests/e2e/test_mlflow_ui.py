"""The MLflow UI as a user sees it (a real `mlflow server` on loopback, headless Chromium):
the experiment opens on its runs, which carry informative names and their dataset, and the
registered version's page shows the model card."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, free_port, serving


@pytest.fixture(scope="module")
def mlflow_server(tiny_run, tmp_path_factory):
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("mlflow_server") / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tiny_run.uri,
           "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"]
    with serving(cmd, url + "/health", log, cwd=tiny_run.root, timeout=120):
        yield url


@pytest.mark.browser
def test_mlflow_ui_shows_run_names_datasets_and_model_card(mlflow_server, tiny_run):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium, or `make browser`)")
    import mlflow
    from playwright.sync_api import sync_playwright

    mlflow.set_tracking_uri(tiny_run.uri)
    run = mlflow.MlflowClient().get_run(tiny_run.run_id)
    name, exp_id = run.info.run_name, run.info.experiment_id
    version = tiny_run.decision["version"]
    # The UI's GenAI / Model training switch: this query (or one click) opens the runs table.
    ml = "?workflowType=machine_learning"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{mlflow_server}/#/experiments/{exp_id}{ml}", timeout=120_000)
            page.wait_for_selector(f"text={name}", timeout=120_000)   # the runs table
            page.wait_for_selector("text=Dataset", timeout=60_000)
            assert f"gir-pairs-train ({run.data.tags['data_version']})" in page.inner_text("body")
            page.screenshot(path=str(tiny_run.root / "ui_experiment.png"))

            page.goto(f"{mlflow_server}/#/models/gir-deblur/versions/{version}{ml}")
            page.wait_for_selector("text=Test PSNR (dB) / SSIM per blur kind", timeout=120_000)
            body = page.inner_text("body")
            assert name in body and run.data.tags["data_version"] in body
            assert "Description" in body and "| kind |" not in body   # rendered as a table
            page.screenshot(path=str(tiny_run.root / "ui_model_version.png"))
        finally:
            browser.close()
