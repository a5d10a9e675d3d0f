"""Multi-process training: torchrun with 2 CPU processes (gloo) equals a 1-process run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import LOSSES, read_log, train_cmd, write_params

DDP = ["train.steps=6", "train.checkpoint_every=3", "train.adversarial_start=2"]


def test_two_process_ddp_run_matches_one_process(tiny_run, tmp_path, mlflow_uri):
    params = write_params(tmp_path / "params.yaml", *DDP)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    cmd = train_cmd(tiny_run.root, params, one)
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", "-m", "gir"]
    proc = subprocess.run(launcher + train_cmd(tiny_run.root, params, two)[3:], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (two / "models/generator.pt").exists()
    # Each rank trains on its half of every global batch: the averaged gradients and the
    # logged (all-reduced) losses are those of the 1-process run, up to float summation order.
    want, got = read_log(one / "report/log.csv"), read_log(two / "report/log.csv")
    assert sorted(got) == sorted(want) == list(range(1, 7))
    for step in want:
        for k in LOSSES:
            assert float(got[step][k]) == pytest.approx(float(want[step][k]), rel=1e-4,
                                                        abs=1e-6), (step, k)


def test_batch_must_split_over_processes(monkeypatch, tmp_path):
    from gir.errors import GirError
    from gir.steps.train import train
    from tests.helpers import tiny_params

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(GirError, match="does not split"):
        train(tiny_params("train.batch_size=4"), tmp_path, tmp_path / "m.csv", tmp_path,
              tmp_path, tmp_path)
