"""Training: a run killed with SIGKILL and resumed continues exactly as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.helpers import LOSSES, RESUME, read_log, tiny_params, train_cmd, write_params


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_run, tmp_path, mlflow_uri):
    import torch

    params = write_params(tmp_path / "params.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same thread count in every process
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(train_cmd(tiny_run.root, params, ref), check=True, env=env,
                   capture_output=True, timeout=300)

    proc = subprocess.Popen(train_cmd(tiny_run.root, params, killed), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "ckpt" / "checkpoint.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    start = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    assert 0 < start < 40
    assert not (killed / "models" / "generator.pt").exists()

    subprocess.run(train_cmd(tiny_run.root, params, killed, "--resume"), check=True, env=env,
                   capture_output=True, timeout=300)
    want, got = read_log(ref / "report/log.csv"), read_log(killed / "report/log.csv")
    assert sorted(got) == sorted(want) == list(range(1, 41))
    for step in range(start + 1, 41):
        assert [got[step][k] for k in LOSSES] == [want[step][k] for k in LOSSES], step
    a = torch.load(ref / "models/generator.pt", weights_only=True)
    b = torch.load(killed / "models/generator.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_other_params(tiny_run, tmp_path, mlflow_uri):
    import pytest

    from gir.errors import GirError
    from gir.steps.train import train

    data = tiny_run.root / "data"
    args = (data / "processed", data / "split/manifest.csv", tmp_path / "m", tmp_path / "r",
            tmp_path / "c")
    train(tiny_params(*RESUME), *args, stop_after=5)
    with pytest.raises(GirError, match="different params"):
        train(tiny_params(*RESUME, "train.lr=0.01"), *args, resume=True)
