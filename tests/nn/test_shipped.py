"""The shipped pretrained model: packaging with a checked sha256, the last link of the default
model chain, and the warm start of `train.init`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gir.errors import GirError
from gir.nn import build_generator, shipped
from gir.rectifier.inference import save_generator
from gir.tracking import resolve
from gir.tracking.ship import model_card, ship_model

ARGS = {"width": 4, "enc_blocks": [1], "middle_blocks": 1, "dec_blocks": [1]}


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A tiny generator shipped into a temporary package folder."""
    torch.manual_seed(0)
    save_generator(tmp_path / "trained", build_generator("nafnet", ARGS), "nafnet", ARGS)
    out = ship_model(tmp_path / "trained", out_dir=tmp_path / "shipped",
                     corpus_manifest=tmp_path / "none.csv")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", out)
    return out


def test_ship_writes_weights_sums_and_card(fake_shipped):
    names = sorted(p.name for p in fake_shipped.iterdir())
    assert names == ["MODEL_CARD.md", "SHA256SUMS", "generator.json", "generator.onnx",
                     "generator.pt"]
    sha = shipped.file_sha256(fake_shipped / "generator.pt")
    sums = (fake_shipped / "SHA256SUMS").read_text()
    assert f"{sha}  generator.pt" in sums
    assert f"{shipped.file_sha256(fake_shipped / 'generator.onnx')}  generator.onnx" in sums
    assert sha in (fake_shipped / "MODEL_CARD.md").read_text()
    assert shipped.shipped_model_dir() == fake_shipped


def test_card_names_the_last_phase_loss():
    facts = {"params": {"train.steps": "10", "train.loss.content": "psnr",
                        "train.loss.content_weight": "0.0025", "train.loss.fft_weight": "0.05"}}
    card = model_card(facts, "abc", {"generator": "nafnet"}, 1000, "", "", "")
    assert '"loss.content": "psnr", "loss.content_weight": "0.0025", "steps": "10"' in card
    assert "fft_weight" not in card


def test_the_shipped_onnx_graph_runs_on_cpu_and_matches_the_weights(fake_shipped):
    """runtime auto on a CPU runs the shipped ONNX graph (what `gir deblur` uses); it gives
    PyTorch's pixels within one grey level, and an altered graph is refused like the weights."""
    from gir.rectifier.onnx_runtime import OnnxDeblurrer

    rgb = (np.random.default_rng(0).random((37, 61, 3)) * 255).astype(np.uint8)
    fast = resolve.resolve_deblurrer("pretrained", "cpu", quiet=True)
    exact = resolve.resolve_deblurrer("pretrained", "cpu", runtime="torch", quiet=True)
    assert isinstance(fast, OnnxDeblurrer) and not isinstance(exact, OnnxDeblurrer)
    assert np.abs(fast(rgb).astype(int) - exact(rgb).astype(int)).max() <= 1
    (fake_shipped / "generator.onnx").write_bytes(b"not a graph")
    with pytest.raises(GirError, match="generator.onnx does not match its sha256"):
        resolve.resolve_deblurrer("pretrained", "cpu", quiet=True)


def test_an_altered_shipped_file_is_refused_in_one_line(fake_shipped):
    data = bytearray((fake_shipped / "generator.pt").read_bytes())
    data[-1] ^= 0xFF
    (fake_shipped / "generator.pt").write_bytes(bytes(data))
    with pytest.raises(GirError, match="does not match its sha256"):
        shipped.shipped_model_dir()
    (fake_shipped / "SHA256SUMS").unlink()
    with pytest.raises(GirError, match="SHA256SUMS missing"):
        shipped.shipped_model_dir()


def test_default_chain_falls_back_to_the_shipped_model_without_creating_a_store(
        fake_shipped, tmp_path, monkeypatch, caplog):
    project = tmp_path / "elsewhere"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with caplog.at_level("INFO", logger="gir"):
        deblurrer = resolve.resolve_deblurrer(None, device="cpu")
    assert deblurrer(np.zeros((20, 30, 3), np.uint8)).shape == (20, 30, 3)
    assert "shipped with gir" in caplog.text
    assert list(project.iterdir()) == []          # no mlflow.db, no mlruns/


def test_warm_start_loads_the_shipped_weights_and_refuses_another_architecture(fake_shipped):
    from gir.steps.train import Trainer
    from tests.helpers import tiny_params

    init = resolve.resolve_init("pretrained")
    assert init["sha256"] == shipped.file_sha256(fake_shipped / "generator.pt")
    p = tiny_params(f"model.generator_args={ARGS}".replace("'", ""))
    trainer = Trainer(p, torch.device("cpu"), init=init)
    for k, v in trainer.g.state_dict().items():
        assert torch.equal(v, init["state"][k])
    with pytest.raises(GirError, match="train.init: .* asks for nafnet"):
        Trainer(tiny_params(), torch.device("cpu"), init=init)   # width 8: not the same model
    assert resolve.resolve_init("none") is None
    with pytest.raises(GirError, match="train.init: 'nowhere'"):
        resolve.resolve_init("nowhere")


def test_warm_start_grows_a_nafnet_by_identity_blocks(fake_shipped, caplog):
    """model.generator_args with more blocks than the init: the new ones start as the identity,
    so the grown generator computes what the shipped one does; fewer blocks is refused."""
    from gir.steps.train import Trainer
    from tests.helpers import tiny_params

    init = resolve.resolve_init("pretrained")
    torch.manual_seed(1)
    for k, v in init["state"].items():   # trained blocks are not the identity: make them count
        if k.endswith((".beta", ".gamma")):
            init["state"][k] = torch.randn_like(v)
    grown_args = dict(ARGS, middle_blocks=3, dec_blocks=[2])
    with caplog.at_level("INFO", logger="gir"):
        trainer = Trainer(tiny_params(f"model.generator_args={grown_args}".replace("'", "")),
                          torch.device("cpu"), init=init)
    assert "grown by 3 NAFNet blocks" in caplog.text
    shipped_g = build_generator("nafnet", ARGS)
    shipped_g.load_state_dict(init["state"])
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.allclose(trainer.g(x), shipped_g(x), atol=1e-6)
        assert not torch.equal(trainer.g(x), x)
    with pytest.raises(GirError, match="train.init: .* asks for nafnet"):
        Trainer(tiny_params(f"model.generator_args={dict(ARGS, middle_blocks=0)}".replace("'", "")),
                torch.device("cpu"), init=init)


def test_the_real_shipped_model_is_small_checked_and_scored_beside_a_new_one(tiny_run, tmp_path,
                                                                           mlflow_uri):
    """The model in the package passes its own SHA256SUMS, stays under 20 MB, and `evaluate`
    scores it on the same test pairs as the freshly trained model (references: pretrained).
    A fresh store (mlflow_uri): the tiny run's own run is left alone."""
    from dataclasses import replace

    from gir.steps.evaluate import evaluate

    root = shipped.shipped_model_dir()
    assert root is not None and (root / shipped.CARD_FILE).is_file()
    assert (root / shipped.WEIGHTS).stat().st_size <= 20_000_000
    p = tiny_run.params
    cfg = replace(p.evaluate, references=["blurred", "pretrained"])
    d = tiny_run.root
    metrics = evaluate(cfg, p.mlflow, d / "data/processed", d / "data/split/manifest.csv",
                       d / "models", tmp_path / "metrics.json")
    assert {"model", "blurred", "pretrained"} <= set(metrics["methods"])
