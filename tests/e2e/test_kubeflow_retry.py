"""A KFP retry of train resumes from the checkpoint its killed attempt left on the volume.

The pipeline's train task runs under kfp.local's SubprocessRunner with a retry policy and
$GIR_CHECKPOINT_ROOT standing in for the mounted PVC. A watcher SIGKILLs the task's process as
soon as its first checkpoint is on disk (a real death, as an evicted or OOM-killed pod's); the
runner starts the task again, and the second attempt continues from that checkpoint in the same
MLflow run.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.helpers import tiny_params

STEPS = 40


def kill_after_first_checkpoint(root, killed: list, stop: threading.Event) -> None:
    """SIGKILL this test's train executor process once a checkpoint exists under root."""
    import psutil
    import torch

    me = psutil.Process()
    while not stop.is_set():
        ckpts = list(root.glob("*/checkpoint.pt"))
        if ckpts:
            for p in me.children(recursive=True):
                try:
                    argv = p.cmdline()
                except psutil.Error:
                    continue
                # the Python running the component (not the `sh -c` around it)
                if "kfp.dsl.executor_main" in argv and "train" in argv:
                    p.send_signal(signal.SIGKILL)
                    p.wait(30)
                    step = torch.load(ckpts[0], map_location="cpu", weights_only=False)["step"]
                    killed.append((p.pid, step))
                    return
        time.sleep(0.005)


@pytest.mark.slow
def test_killed_train_attempt_is_retried_and_resumes(tiny_run, tmp_path, mlflow_uri,
                                                      monkeypatch):
    import mlflow
    from kfp import dsl

    from gir.config import to_dict
    from pipelines.gir_pipeline import _train_task, run_locally

    sections = to_dict(tiny_params(f"train.steps={STEPS}", "train.checkpoint_every=5",
                                   "train.log_every=1", "train.image_every=1000"))
    volume = tmp_path / "volume"
    volume.mkdir()
    monkeypatch.setenv("GIR_CHECKPOINT_ROOT", str(volume))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = tiny_run.root / "data"

    @dsl.pipeline(name="train-retry")
    def train_only():
        processed = dsl.importer(artifact_uri=str(data / "processed"),
                                 artifact_class=dsl.Dataset).output
        split = dsl.importer(artifact_uri=str(data / "split"), artifact_class=dsl.Dataset).output
        task = _train_task(sections, "kfp-local", None, processed, split)
        task.set_retry(num_retries=1, backoff_duration="0s")

    killed: list = []
    stop = threading.Event()
    watcher = threading.Thread(target=kill_after_first_checkpoint,
                               args=(volume, killed, stop), daemon=True)
    watcher.start()
    try:
        run_dir = run_locally(train_only, tmp_path / "root")
    finally:
        stop.set()
        watcher.join(30)

    assert len(killed) == 1, "the first attempt ended before it could be killed"
    step_at_kill = killed[0][1]
    assert 0 < step_at_kill < STEPS and step_at_kill % 5 == 0
    assert (run_dir / "train" / "generator" / "generator.pt").is_file()
    # One MLflow run, continued by the retry from the checkpoint, finished at the last step.
    (run,) = mlflow.search_runs(experiment_names=["gir"], output_format="list")
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["gir.resumed_from_step"]) == step_at_kill
    assert run.data.metrics["train_steps"] == STEPS
    log = (run_dir / "train" / "train_report" / "log.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in log[1:]] == list(range(1, STEPS + 1))
