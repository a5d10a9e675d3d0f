"""Make a GPU-lease run (train.py's result.tar) an ordinary MLflow run of this tracking store.

Creates the run in the params' experiment with the recorded params, tags, metric history
(original steps and times), log.csv, samples.png and record.json, tags it with the device and
the full split's data version, and writes its run.json into the model folder, so `gir evaluate
--model`, `gir ship --model` and train.init treat it like any other trained model.

    python tools/gpu_lease/import_run.py --result $FILES/result.tar --out work/lease1 \
        --split work/pretrain/split/manifest.csv --params profiles/pretrain.yaml --device "H200"
"""
import argparse
import json
import sys
import tarfile
from pathlib import Path


def import_run(result: Path, out: Path, split: Path, params_file: str | None,
               device: str) -> str:
    from gir.config import load_params
    from gir.data.manifest import data_version, read_manifest
    from gir.tracking.runs import setup, write_run_file

    with tarfile.open(result) as tar:
        tar.extractall(out, filter="data")
    run_dir = out / "lease-run"
    rec = json.loads((run_dir / "record.json").read_text())
    if not (run_dir / "model" / "generator.pt").is_file():
        raise ValueError(f"{result}: no trained model in it (status {rec['status']})")
    params = load_params(params_file)
    mlflow = setup(params.mlflow)
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name(params.mlflow.experiment)
    times = [m["t"] for m in rec["metrics"]] or [0.0]
    tags = {**rec["tags"], "gir.device": device,
            "gir.offline_record": "recorded by tools/gpu_lease/train.py, imported by "
                                  "tools/gpu_lease/import_run.py",
            "gir.lease_data_version": rec["tags"].get("data_version", ""),
            "data_version": data_version(read_manifest(split)),
            "gir.probe": json.dumps(rec.get("probe", {})),
            "cuda_peak_mem_gb": f"{rec.get('cuda_peak_mem_gb', 0.0):.2f}"}
    run = client.create_run(exp.experiment_id, start_time=int(min(times) * 1000), tags=tags,
                            run_name=rec.get("run_name"))
    rid = run.info.run_id
    params_list = [mlflow.entities.Param(k, v) for k, v in rec["params"].items()]
    metrics = [mlflow.entities.Metric(k, float(v), int(m["t"] * 1000), int(m["step"] or 0))
               for m in rec["metrics"] for k, v in m.items() if k not in ("step", "t")]
    for i in range(0, len(params_list), 90):
        client.log_batch(rid, params=params_list[i:i + 90])
    for i in range(0, len(metrics), 900):
        client.log_batch(rid, metrics=metrics[i:i + 900])
    client.log_metric(rid, "train_steps", rec["result"]["steps"])
    for name in ("train/log.csv", "train/samples.png", "record.json"):
        if (run_dir / name).exists():
            client.log_artifact(rid, str(run_dir / name), "train")
    client.set_terminated(rid, rec["status"], end_time=int(max(times) * 1000))
    write_run_file(run_dir / "model", rid, exp.experiment_id)
    return rid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--result", type=Path, required=True, help="train.py's result.tar")
    ap.add_argument("--out", type=Path, required=True, help="where to unpack it")
    ap.add_argument("--split", type=Path, required=True, help="the full split manifest")
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--device", default="GPU lease", help="what it ran on, for the tag")
    a = ap.parse_args()
    from gir.errors import GirError

    try:
        rid = import_run(a.result, a.out, a.split, a.params, a.device)
    except (GirError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        sys.exit(f"import: {exc}")
    print(f"import: MLflow run {rid}; model in {a.out / 'lease-run' / 'model'}")


if __name__ == "__main__":
    main()
