# The two commands of the README, plus the pieces they are made of.
#   make demo  - set up .venv and run the whole pipeline on the embedded sample data (dvc repro)
#   make test  - set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# dvc.yaml's commands call `gir`, and mlflow serve calls uvicorn: the venv's bin comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: install demo test browser pretrain clean-outputs help

help:
	@echo "make demo   # install, then run the whole pipeline (dvc repro) on the sample data"
	@echo "make test   # install, then run the tests"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: on these machines that version is a CPU build on local disk.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/dvc repro
	@echo
	@echo "Done. Look at:"
	@echo "  $(BIN)/dvc metrics show                 # test PSNR/SSIM, model vs blurred vs unsharp"
	@echo "  cat reports/registration.json            # version registered, champion or challenger"
	@echo "  $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db   # runs, curves, figures, registry"
	@echo "      then http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning  (the runs table)"
	@echo "  $(BIN)/gir deblur YOUR.jpg -o out/       # the @champion, else the shipped model"

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped (apt-get install chromium)"; fi; }

test: install browser
	$(BIN)/python -m pytest

# The model shipped in gir/nn/shipped/: corpus -> the same pipeline steps with
# profiles/pretrain.yaml -> held-out benchmark (also of the 8-view self-ensemble).
# Resumable: run it again after an interruption.
# Then `gir ship --model $(PT)/model --heldout $(PT)/heldout/heldout.md`; commit gir/nn/shipped/.
# A later phase in its own folder, warm-started from the last one (see profiles/pretrain.yaml):
#   make pretrain PT=work/pretrain2 PT_SET="--set train.init=work/pretrain/model --set train.steps=12000"
#   make pretrain PT=work/pretrain3 PT_SET="--set train.init=work/pretrain2/model --set train.steps=11000"
#   make pretrain PT=work/pretrain4 PT_SET="--set train.init=work/pretrain3/model --set train.steps=10000"
#   make pretrain PT=work/pretrain5 PT_SET="--set train.init=work/pretrain4/model --set train.steps=10000 --set train.lr=0.0005"
#   make pretrain PT=work/pretrain6 PT_SET="--set train.init=work/pretrain5/model --set train.steps=10000 --set train.lr=0.0005"
#   make pretrain PT=work/pretrain7 PT_SET="--set train.init=work/pretrain6/model --set train.steps=10000 --set train.lr=0.0005 \
#     --set data.synth.motion_length=[7.0,21.0] --set data.synth.defocus_radius=[2.0,5.0] --set data.synth.gaussian_sigma=[1.0,2.5]"
#   (phase 7 narrows the blur ranges to params.yaml's defaults, the ranges `gir deblur` users and the held-out bench see)
#   make pretrain PT=work/pretrain8a PT_SET="--set train.init=work/pretrain7/model --set train.steps=1500 --set train.lr=0.0003 \
#     --set train.crop=256 --set train.batch_size=2 <phase 7's three ranges>"
#   make pretrain PT=work/pretrain8 PT_SET="--set train.init=work/pretrain8a/model --set train.steps=4000 --set train.lr=0.0003 \
#     --set train.crop=256 --set train.batch_size=2 <phase 7's three ranges>"
#   (phase 8 trains on 256 px crops, batch 2: the same pixels per step with more context per crop)
#   make pretrain PT=work/pretrain9a PT_SET="--set train.init=work/pretrain8/model --set train.steps=1500 <phase 8's settings> \
#     --set 'train.resynth_weights={motion: 2.0}'"
#   make pretrain PT=work/pretrain9 PT_SET="--set train.init=work/pretrain9a/model --set train.steps=5500 <phase 8's settings> \
#     --set 'train.resynth_weights={motion: 2.0}'"
#   (phase 9 draws motion, the kind that gained least, for 2 of every 5 fresh blurs instead of 1 of 4)
#   make pretrain PT=work/pretrain10 PT_SET="--set train.init=work/pretrain9/model --set train.steps=7000 --set train.lr=0.0002 <phase 9's settings>"
#   (phase 10: phase 9's recipe again, from a lower learning rate)
#   make pretrain PT=work/pretrain11 PT_SET="--set train.init=work/pretrain10/model --set train.steps=8000 --set train.lr=0.0002 <phase 9's settings>"
#   (phase 11: phase 10's recipe for 8000 more steps)
#   make pretrain PT=work/pretrain12 PT_SET="--set train.init=work/pretrain11/model --set train.steps=9000 --set train.lr=0.00015 <phase 9's settings>"
#   (phase 12: the same for 9000 more steps from lr 1.5e-4; the shipped model)
PT     ?= work/pretrain
PTP    := --params profiles/pretrain.yaml $(PT_SET)
pretrain: install
	$(BIN)/gir corpus build --out data/corpus
	$(BIN)/gir ingest $(PTP) --out $(PT)/raw
	$(BIN)/gir validate $(PTP) --raw $(PT)/raw --out $(PT)/validated --report $(PT)/quality
	$(BIN)/gir preprocess $(PTP) --raw $(PT)/raw --manifest $(PT)/validated/manifest.csv --out $(PT)/processed
	$(BIN)/gir split $(PTP) --data $(PT)/processed --out $(PT)/split
	$(BIN)/gir train $(PTP) --data $(PT)/processed --split $(PT)/split/manifest.csv --out $(PT)/model --report $(PT)/train --checkpoints $(PT)/checkpoints --resume
	$(BIN)/gir evaluate $(PTP) --data $(PT)/processed --split $(PT)/split/manifest.csv --model $(PT)/model --out $(PT)/metrics.json
	$(BIN)/gir bench --heldout --model pretrained=$(PT)/model --ensemble 8 --out $(PT)/heldout --no-mlflow

clean-outputs:
	rm -rf data models checkpoints reports mlflow.db mlruns pipeline_root work
