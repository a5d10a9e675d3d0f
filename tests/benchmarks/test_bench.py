"""`gir bench` and the classical references it compares against."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gir.data.dataset import Pair


@pytest.fixture
def known_blur(tmp_path):
    """A photo blurred with a known motion kernel exactly as the synthetic sources do."""
    from skimage import data

    from gir.data.blur import convolve, motion_kernel

    sharp = data.astronaut()[100:228, 150:278]
    kernel = motion_kernel(13.0, np.random.default_rng(3))
    np.save(tmp_path / "k.npy", kernel)
    blur = np.clip(np.round(convolve(sharp / 255.0, kernel) * 255), 0, 255).astype(np.uint8)
    return Pair("p", "motion", blur, sharp, {}, str(tmp_path / "k.npy"))


def test_wiener_and_rl_with_true_kernel_recover_known_blur(known_blur):
    """skimage's deconvolutions, checked on a case with a known answer before being trusted."""
    from gir.rectifier.scoring import REFERENCES, psnr

    p = known_blur
    base = psnr(p.sharp, p.blur)
    for name in ("wiener", "richardson_lucy"):
        assert psnr(p.sharp, REFERENCES[name](p.blur, p)) > base + 3, name
    assert REFERENCES["wiener"](p.blur, Pair("q", "real", p.blur, p.sharp, {})) is None


def test_gmacs_are_counted_not_guessed():
    from gir.benchmarks.models import count_gmacs

    # nafnet's first 3x3 conv alone (3->8 on 64x64) is 64*64*8*3*9 MACs; the total scales with
    # the pixel count (up to the few per-image channel-attention MACs)
    small, big = count_gmacs("nafnet", {"width": 8}, 64, 64), count_gmacs("nafnet", {"width": 8},
                                                                           128, 128)
    assert small > 64 * 64 * 8 * 3 * 9 / 1e9
    assert big == pytest.approx(4 * small, rel=1e-3)


def test_bench_table_for_every_generator(tiny_run, tmp_path, mlflow_uri):
    from gir.benchmarks.models import bench
    from gir.nn import generator_names
    from tests.helpers import TINY_ARGS

    data = tiny_run.root / "data"
    result = bench(tiny_run.params, models=[f"tiny={tiny_run.root / 'models'}"],
                   data_dir=data / "processed", split_manifest=data / "split/manifest.csv",
                   size="32x24", references=["blurred", "wiener"], out_dir=tmp_path,
                   train_crop=16, generator_args=TINY_ARGS)
    rows = {r["generator"]: r for r in result["generators"]}
    assert set(rows) == set(generator_names())
    for r in rows.values():
        assert r["gmacs"] > 0 and r["params_m"] > 0 and r["cpu_ms_per_mp"] > 0
        assert r["cpu_train_img_per_s"] > 0
    # onnxruntime (gir deblur's CPU runtime) is timed for every generator its exporter takes
    assert rows["nafnet"]["onnx_s_per_image"] > 0 and rows["fourier_unet"]["onnx_s_per_image"] is None
    assert set(result["quality"]["methods"]) == {"tiny", "blurred", "wiener"}
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["quality"]["pairs"] == tiny_run.metrics["pairs"]
    md = (tmp_path / "bench.md").read_text()
    assert "| nafnet |" in md and "| wiener |" in md
    # The run holds what bench wrote, not the folder: here the folder also holds the store.
    import mlflow

    run = mlflow.search_runs(search_all_experiments=True, output_format="list",
                             filter_string="attributes.run_name = 'bench'")[0]
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "bench")}
    assert logged == {"bench/bench.md", "bench/bench.json"}


def test_bench_bad_input_is_one_line(tmp_path):
    from tests.helpers import run_gir

    proc = run_gir("bench", "--generators", "nosuch", "--no-mlflow", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "nosuch" in proc.stderr


def test_heldout_bench_scores_models_and_references_per_kind(tiny_run, tmp_path):
    """`gir bench --heldout`: photos no pipeline trains on, blurred by the training families and
    the held-out family (shake included), mild and sharp rows, the model beside the blurred
    input and Wiener with the true kernel."""
    from tests.helpers import ROOT, run_gir

    proc = run_gir("bench", "--heldout", "--params", str(ROOT / "params.yaml"),
                   "--model", f"tiny={tiny_run.root / 'models'}", "--per-kind", "1",
                   "--references", "blurred", "wiener", "--ensemble", "2", "--out", str(tmp_path),
                   cwd=tmp_path)
    result = json.loads((tmp_path / "heldout.json").read_text())
    kinds = ("motion", "defocus", "gaussian", "shake")
    assert set(result["per_kind"]) == ({f"{g}/{k}" for g in ("train", "heldout") for k in kinds}
                                       | {"mild/motion", "mild_heldout/motion"})
    assert result["pairs"] == (2 * 4 + 2 + 1) * len(result["photos"])  # + one sharp per photo
    shake = result["per_kind"]["train/shake"]
    assert "wiener" not in shake and "tiny" in shake
    assert result["headline"]["wiener"]["train_mdg"]["mean"] > 0  # the true kernel helps
    assert {"tiny", "tiny x2"} <= set(result["sharp"])
    assert "| tiny |" in (tmp_path / "heldout.md").read_text()
    assert "| tiny x2 |" in (tmp_path / "heldout.md").read_text()   # its self-ensemble
    assert "gir: model: " in proc.stderr and not (tmp_path / "mlflow.db").exists()
