"""params.yaml loading: every key typed, typos and bad values rejected with the key named."""

import typing

import pytest
import yaml

from gir.config import ConfigError, flatten, load_params, params_from_dict, schema, to_dict
from tests.helpers import ROOT


def test_project_params_file_loads_and_matches_schema():
    p = load_params(ROOT / "params.yaml")
    assert p.data.source == "sample"
    assert p.split.train + p.split.val + p.split.test == pytest.approx(1.0)
    # Every key of the file is a schema key (no silent extras) and vice versa.
    raw = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    schema = flatten(to_dict(p))
    missing = {k for k in schema if not any(k == r or k.startswith(r + ".") for r in raw)}
    assert not missing, f"params.yaml lacks keys: {sorted(missing)}"


@pytest.mark.parametrize("data, needle", [
    ({"train": {"stpes": 3}}, "train.stpes: unknown key"),
    ({"train": {"lr": "fast"}}, "train.lr: expected a number"),
    ({"train": {"steps": 1.5}}, "train.steps: expected an integer"),
    ({"data": {"source": "flickr"}}, "data.source: expected one of"),
    ({"split": {"train": 0.9, "val": 0.1, "test": 0.1}}, "train + val + test must be 1"),
    ({"train": {"crop": 100}}, "train.crop: must be a multiple of 16"),
    ({"data": {"synth": {"kinds": ["motion", "swirl"]}}}, "data.synth.kinds[1]"),
    ({"train": {"amp": "yes"}}, "train.amp: expected true or false"),
    ({"train": {"steps": 0}}, "train.steps: must be positive"),
    ({"train": {"ema_decay": 1.0}}, "train.ema_decay: must be in [0, 1)"),
    ({"train": {"betas": [0.9]}}, "train.betas: must be [beta1, beta2]"),
    ({"data": {"synth": {"jpeg_quality": [50, 120]}}}, "data.synth.jpeg_quality: must lie within"),
    ({"data": {"synth": {"motion_length": [9.0, 3.0]}}}, "data.synth.motion_length: must be [low"),
    ({"data": {"synth": {"kinds": []}}}, "data.synth.kinds: must not be empty"),
    ({"split": {"min_test_scenes": -1}}, "split.min_test_scenes: must be 0 or more"),
    ({"model": {"generator": "nafent"}}, "model.generator: expected one of"),
    ({"model": {"discriminator": "patchgun"}}, "model.discriminator: expected one of"),
    ({"evaluate": {"references": ["blurred", "weiner"]}}, "evaluate.references[1]: expected one"),
])
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(ConfigError) as err:
        params_from_dict(data)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_use_dotted_keys_and_yaml_values():
    p = params_from_dict({}, ["train.steps=7", "model.generator_args={width: 8}",
                              "data.sample.images=[astronaut]", "train.amp=false"])
    assert p.train.steps == 7 and p.model.generator_args == {"width": 8}
    assert p.data.sample.images == ["astronaut"] and p.train.amp is False
    with pytest.raises(ConfigError, match="expected key=value"):
        params_from_dict({}, ["train.steps"])


def test_cli_reports_bad_params_in_one_line(tmp_path):
    from tests.helpers import run_gir

    (tmp_path / "params.yaml").write_text("train:\n  lr: [1\n")
    proc = run_gir("split", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr


def _defaults_and_file() -> tuple[dict, dict]:
    return (flatten(to_dict(schema.Params())),
            flatten(yaml.safe_load((ROOT / "params.yaml").read_text())))


def _differences(defaults: dict, in_file: dict) -> list[str]:
    return [f"{k}: schema {defaults.get(k, '<absent>')!r}, params.yaml {in_file.get(k, '<absent>')!r}"
            for k in sorted(set(defaults) | set(in_file)) if defaults.get(k) != in_file.get(k)]


def test_schema_defaults_equal_params_yaml():
    """One source of truth: a run outside the project (no params.yaml) gets the same values as
    `make demo`. Compared value by value, not only key by key."""
    differ = _differences(*_defaults_and_file())
    assert not differ, "schema.py defaults differ from params.yaml:\n" + "\n".join(differ)


def test_the_comparison_sees_values_not_only_keys():
    defaults, in_file = _defaults_and_file()
    assert _differences({**defaults, "train.lr": 2e-3}, in_file) == [
        f"train.lr: schema 0.002, params.yaml {in_file['train.lr']!r}"]
    assert _differences(defaults, {**in_file, "train.new_knob": 1}) == [
        "train.new_knob: schema '<absent>', params.yaml 1"]


def _literal(tp) -> list[str]:
    return sorted(typing.get_args(tp))


def test_names_in_the_schema_equal_their_registries():
    """config may not import the registries (imports point down): the names are spelled in
    schema.py, so a typo fails at load, and this keeps each list equal to its registry."""
    from gir.data.sources import SOURCES
    from gir.nn import DISCRIMINATORS, generator_names
    from gir.rectifier.scoring import PRETRAINED, REFERENCES

    assert _literal(schema.GeneratorName) == generator_names()
    assert _literal(schema.DiscriminatorName) == sorted(DISCRIMINATORS)
    assert _literal(schema.SourceName) == sorted(SOURCES)
    assert _literal(schema.ReferenceName) == sorted([*REFERENCES, PRETRAINED])


def test_every_profile_loads_and_each_phase_names_its_predecessor():
    profiles = sorted((ROOT / "profiles").rglob("*.yaml"))
    assert len(profiles) > 10
    for path in profiles:
        load_params(path)
    for path in sorted((ROOT / "profiles" / "pretrain").glob("phase*.yaml")):
        raw = yaml.safe_load(path.read_text())
        base = (path.parent / raw["base"]).resolve()
        assert base.exists(), f"{path.name}: base {raw['base']} missing"
        init = raw["train"]["init"]
        before = "1" if base.name == "pretrain.yaml" else base.stem.removeprefix("phase")
        assert init == f"work/pretrain/phase{before}/model", f"{path.name} warm-starts from {init}"


def test_make_pretrain_runs_one_phase_profile():
    """`make pretrain PHASE=N` trains phase N from its profile into its own folder."""
    import shutil
    import subprocess

    if not shutil.which("make"):
        pytest.skip("no make")
    out = subprocess.run(["make", "-n", "pretrain", "PHASE=17"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "gir train --params profiles/pretrain/phase17.yaml" in out
    assert "--out work/pretrain/phase17/model" in out
    first = subprocess.run(["make", "-n", "pretrain"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert "--params profiles/pretrain.yaml" in first and "work/pretrain/phase1/" in first
