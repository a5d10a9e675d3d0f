"""params.yaml loading: every key typed, typos and bad values rejected with the key named."""

import pytest

from gir.config import ConfigError, load_params, params_from_dict, flatten, to_dict
from tests.conftest import ROOT


def test_project_params_file_loads_and_matches_schema():
    p = load_params(ROOT / "params.yaml")
    assert p.data.source == "sample"
    assert p.split.train + p.split.val + p.split.test == pytest.approx(1.0)
    # Every key of the file is a schema key (no silent extras) and vice versa.
    import yaml

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
    from tests.conftest import run_gir

    (tmp_path / "params.yaml").write_text("train:\n  lr: [1\n")
    proc = run_gir("split", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr
