"""Kubeflow `gir-rectify`: the compiled spec (list -> ParallelFor of shards -> summary), a
recurring run created against a recording KFP API on loopback, and `gir pipeline run --local
--pipeline rectify` through kfp.local's SubprocessRunner on a loopback S3 prefix."""

from __future__ import annotations

import json

import pytest
import yaml

from batchkit import FAST, broken, decodes, detector_file, get, keys, photos, s3, tiny_model, upload  # noqa: F401
from tests.helpers import KfpRecorder, run_gir

IMAGE = "registry.example.com/ml/gir:test"


def compile_rectify(tmp_path, *args: str) -> tuple[dict, dict]:
    out = tmp_path / "gir-rectify.yaml"
    proc = run_gir("pipeline", "compile", "--pipeline", "rectify", "-o", str(out), *args,
                   cwd=tmp_path)
    assert f"wrote {out}" in proc.stderr
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform


def test_spec_lists_fans_out_with_parallel_for_and_summarises(tmp_path):
    spec, platform = compile_rectify(tmp_path, "--image", IMAGE, "--shards", "8",
                                     "--source", "s3://photos/incoming/", "--ensemble", "4")
    assert spec["pipelineInfo"]["name"] == "gir-rectify"
    tasks = spec["root"]["dag"]["tasks"]
    loops = [t for t in tasks.values() if "parameterIterator" in t]
    assert len(loops) == 1                                    # the dsl.ParallelFor
    loop = loops[0]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("list-shards-Output")
    assert loop["dependentTasks"] == ["list-shards"]
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["rectify-shard"]
    assert inner["rectify-shard"]["retryPolicy"]["maxRetryCount"] == 2
    assert "summarize" in tasks and tasks["summarize"]["dependentTasks"] == [
        next(name for name, t in tasks.items() if "parameterIterator" in t)]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["shards"]["defaultValue"] == 8
    assert params["source"]["defaultValue"] == "s3://photos/incoming/"
    assert params["ensemble"]["defaultValue"] == 4
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        IMAGE}
    assert "gir-s3" in json.dumps(platform) or "secret" in json.dumps(platform).lower()


class RecurringRecorder(KfpRecorder):
    """The KFP API recorder, also answering recurring-run creation."""

    def _reply(self):
        if self.command == "POST" and self.path.split("?")[0].endswith("/recurringruns"):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n))
            self.server.seen.append((self.command, self.path.split("?")[0], body))
            data = json.dumps({"recurring_run_id": "rr-7", **body}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super()._reply()

    do_GET = do_POST = do_DELETE = _reply


def test_schedule_creates_a_recurring_run(tmp_path):
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), RecurringRecorder)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        proc = run_gir("pipeline", "schedule", "--host", url, "--cron", "*/15 * * * *",
                       "--source", "s3://photos/incoming/", "--dest", "s3://photos/deblurred/",
                       "--image", IMAGE, cwd=tmp_path)
        bad = run_gir("pipeline", "schedule", "--host", url, "--cron", "every hour",
                      "--source", "s3://p/in/", "--dest", "s3://p/out/", cwd=tmp_path,
                      check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.stdout.strip() == f"{url}/#/recurringrun/details/rr-7"
    job = next(b for m, p, b in server.seen if p.endswith("/recurringruns"))
    assert job["trigger"]["cron_schedule"]["cron"] == "0 */15 * * * *"
    assert job["max_concurrency"] in ("1", 1) and job["no_catchup"] is True
    assert job["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "gir-rectify"
    params = job["runtime_config"]["parameters"]
    assert params["source"] == "s3://photos/incoming/"
    assert params["dest"] == "s3://photos/deblurred/"
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--cron 'every hour'" in bad.stderr


@pytest.mark.slow
def test_local_run_rectifies_a_prefix(s3, tiny_model, detector_file, tmp_path):
    url, client = s3
    client.create_bucket(Bucket="gir-kfp")
    good = photos(6, seed=11)
    upload(client, "gir-kfp", "incoming/", {**good, "broken/empty.png": broken()[
        "broken/empty.png"]})
    proc = run_gir("pipeline", "run", "--local", "--pipeline", "rectify",
                   "--source", "s3://gir-kfp/incoming/", "--dest", "s3://gir-kfp/deblurred/",
                   "--model", str(tiny_model), "--shards", "2", "--endpoint-url", url,
                   "--root", str(tmp_path / "root"), cwd=tmp_path,
                   env={"GIR_DETECTOR": str(detector_file), **FAST})
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "written": 6, "failed": 1, "skipped": 0, "not_processed": 0}
    out = [k for k in keys(client, "gir-kfp", "deblurred/") if not k.startswith("_gir/")]
    assert out == sorted([f"{r}.png" for r in good] + [f"{r}.json" for r in good])
    assert all(decodes(get(client, "gir-kfp", f"deblurred/{r}.png")) for r in good)
    report = json.loads(get(client, "gir-kfp", "deblurred/_gir/report.json"))
    assert report["shards"] == 2 and "empty" in report["failed"][0]["reason"]
