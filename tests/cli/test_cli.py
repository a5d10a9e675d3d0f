"""The `gir` command line as a whole: one spelling per idea across verbs, hidden old spellings,
--params wherever params are read, --verbose/--traceback, and a --help that imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gir.cli import build_parser
from tests.helpers import ROOT, run_gir

# Verbs that read no params: the corpus builder and `ship` (a model folder in, files out);
# `pipeline` takes --params on its subcommands.
NO_PARAMS = {"corpus", "ship", "pipeline"}


def _verbs() -> dict:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a.choices, dict))
    return sub.choices


def _options(p) -> dict:
    return {o: a for a in p._actions for o in a.option_strings}


def test_every_verb_that_reads_params_takes_params_and_set():
    missing = [name for name, p in _verbs().items()
               if name not in NO_PARAMS and not {"--params", "--set"} <= set(_options(p))]
    assert not missing, f"verbs without --params/--set: {missing}"


def test_one_spelling_for_destination_model_and_device():
    for name, p in _verbs().items():
        opts = _options(p)
        assert "--dest" not in opts and "--output" not in opts, name
        if "--device" in opts:
            assert opts["--device"].default == "auto", f"gir {name} --device"
        if "-o" in opts:
            assert opts["-o"].dest == "out", f"gir {name} -o"


@pytest.mark.parametrize("argv, dest, value", [
    (["serve", "--events-dest", "out/"], "events_out", "out/"),
    (["sweep", "--engine", "kfp-local"], "engine", "kfp-local"),
    (["sweep", "--runner", "kfp-local"], "engine", "kfp-local"),
])
def test_old_spellings_still_parse_but_are_hidden(argv, dest, value, capsys):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    with pytest.raises(SystemExit):
        build_parser().parse_args([argv[0], "--help"])
    shown = capsys.readouterr().out
    for old in ("--events-dest", "--engine"):
        assert old not in shown


def test_global_flags_before_or_after_the_verb():
    for argv in (["-v", "--traceback", "detect", "x.png"], ["detect", "x.png", "-v", "--traceback"]):
        args = build_parser().parse_args(argv)
        assert args.verbose and args.traceback
    args = build_parser().parse_args(["detect", "x.png"])
    assert not args.verbose and not args.traceback


def test_an_error_is_one_line_unless_traceback_is_asked(tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  lr: fast\n")
    plain = run_gir("train", "--params", "bad.yaml", cwd=tmp_path, check=False)
    assert plain.returncode != 0 and plain.stderr.strip().count("\n") == 0, plain.stderr
    assert "train.lr: expected a number" in plain.stderr
    full = run_gir("--traceback", "train", "--params", "bad.yaml", cwd=tmp_path, check=False)
    assert full.returncode == plain.returncode
    assert "Traceback (most recent call last)" in full.stderr
    assert full.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_deblur_reads_the_params_it_is_given(tmp_path):
    from gir.data.imageio import write_png

    write_png(tmp_path / "x.png", (np.random.default_rng(0).random((24, 32, 3)) * 255)
              .astype(np.uint8))
    (tmp_path / "other.yaml").write_text("register:\n  model_name: gir-other\n")
    proc = run_gir("deblur", "x.png", "-o", "out", "--params", "other.yaml", cwd=tmp_path)
    assert "models:/gir-other@champion" in proc.stderr     # the name came from --params
    assert (tmp_path / "out" / "x.png.png").exists()
    bad = run_gir("deblur", "x.png", "-o", "out", "--params", "absent.yaml", cwd=tmp_path,
                  check=False)
    assert bad.returncode != 0 and "absent.yaml: no such params file" in bad.stderr


def test_help_imports_nothing_heavy():
    """`gir --help` (and parsing any verb) stays quick: torch, MLflow, numpy load in commands."""
    code = ("import sys; from gir.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'mlflow', 'numpy', 'scipy', 'pandas', 'yaml') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"


def test_verbose_shows_the_gir_logger_at_debug():
    import logging

    from gir.cli.common import setup_logging

    log = logging.getLogger("gir")
    try:
        setup_logging(False)
        assert log.isEnabledFor(logging.INFO) and not log.isEnabledFor(logging.DEBUG)
        setup_logging(True)
        assert log.isEnabledFor(logging.DEBUG)
    finally:
        log.setLevel(logging.NOTSET)
