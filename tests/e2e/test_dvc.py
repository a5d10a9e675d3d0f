"""`dvc repro` for real: the stages run in order, a second repro does nothing, and a change to
train.* re-runs only train and what follows it (not the independent detector stage)."""

import json

import yaml

from tests.helpers import dvc as _dvc
from tests.helpers import dvc_project, tiny_params

STAGES = ("listing", "ingest", "validate", "preprocess", "split", "train", "evaluate", "register",
          "detector")


def test_dvc_repro_is_incremental(tmp_path, mlflow_uri):
    repo = dvc_project(tmp_path, tiny_params())

    out = _dvc("repro", cwd=repo)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out
    reg = json.loads((repo / "reports/registration.json").read_text())
    assert reg["alias"] == "champion"
    assert (repo / "models/deblur/generator.pt").is_file()
    detector = json.loads((repo / "models/detector/registration.json").read_text())
    assert detector["model_name"] == "gir-detector" and detector["alias"] == "champion"
    metrics = json.dumps(json.loads(_dvc("metrics", "show", "--json", cwd=repo)))
    assert "reports/metrics.json" in metrics and "reports/detector.json" in metrics

    again = _dvc("repro", cwd=repo)   # only the always-run listing, whose output is unchanged
    assert {s for s in STAGES if f"Running stage '{s}'" in again} == {"listing"}, again

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["steps"] = 8
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = _dvc("status", "--json", cwd=repo)
    changed = set(json.loads(status))
    assert changed == {"train", "listing"}, changed  # evaluate/register follow their deps
    out = _dvc("repro", cwd=repo)
    ran = {s for s in STAGES if f"Running stage '{s}'" in out}
    assert ran == {"listing", "train", "evaluate", "register"}, out
