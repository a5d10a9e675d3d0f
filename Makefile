# The two commands of the README, plus the pieces they are made of.
#   make demo  - set up .venv and run the whole pipeline on the embedded sample data (dvc repro)
#   make test  - set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)

# dvc.yaml's commands call `gir`, and mlflow serve calls uvicorn: the venv's bin comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: install demo test test-fast lint dvc-deps browser pretrain clean-outputs help image image-push container-demo

help:
	@echo "make demo   # install, then run the whole pipeline (dvc repro) on the sample data"
	@echo "make test   # install, then run the tests"
	@echo "make test-fast  # the in-process tests only (not those marked slow): the inner loop"
	@echo "make lint   # ruff: pyflakes, import order, pycodestyle errors"
	@echo "make dvc-deps   # each dvc.yaml stage's code deps, from the import graph"
	@echo "make pretrain PHASE=N   # one phase of the shipped model (profiles/pretrain/)"

# Every dependency from the lock (versions + hashes; the image installs the same lock's runtime
# subset, requirements.lock), then gir itself without resolving anything. Regenerate both locks
# after changing pyproject.toml's dependencies: tools/container/lock.sh.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
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

test: install browser lint
	$(BIN)/python -m pytest

# The quick inner loop: everything tests/conftest.py does not mark slow (end-to-end runs).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .

# The gir/ files each dvc.yaml stage's step imports (what its deps must list); --check to compare.
dvc-deps: install
	$(BIN)/python tools/dvc_deps.py

# The model shipped in gir/nn/shipped/: corpus -> the same pipeline steps with one phase's
# profile -> held-out benchmark (also of the 8-view self-ensemble). Resumable: run it again after
# an interruption. Phase 1 is profiles/pretrain.yaml; phase N is profiles/pretrain/phaseN.yaml,
# which names its predecessor (base:) and warm-starts from its model (docs/model-history.md).
# Then `gir ship --model $(PT)/model --heldout $(PT)/heldout/heldout.md`; commit gir/nn/shipped/.
PHASE  ?= 1
PT     ?= work/pretrain/phase$(PHASE)
PTPROF := $(if $(filter 1,$(PHASE)),profiles/pretrain.yaml,profiles/pretrain/phase$(PHASE).yaml)
PTP    := --params $(PTPROF) $(PT_SET)
pretrain: install
	@test -f $(PTPROF) || { echo "make pretrain: no profile $(PTPROF) for PHASE=$(PHASE)"; exit 1; }
	$(BIN)/gir corpus build --out data/corpus
	$(BIN)/gir ingest $(PTP) --out $(PT)/raw
	$(BIN)/gir validate $(PTP) --raw $(PT)/raw --out $(PT)/validated --report $(PT)/quality
	$(BIN)/gir preprocess $(PTP) --raw $(PT)/raw --manifest $(PT)/validated/manifest.csv --out $(PT)/processed
	$(BIN)/gir split $(PTP) --data $(PT)/processed --out $(PT)/split
	$(BIN)/gir train $(PTP) --data $(PT)/processed --split $(PT)/split/manifest.csv --out $(PT)/model --report $(PT)/train --checkpoints $(PT)/checkpoints --resume
	$(BIN)/gir evaluate $(PTP) --data $(PT)/processed --split $(PT)/split/manifest.csv --model $(PT)/model --out $(PT)/metrics.json
	$(BIN)/gir bench --heldout --model pretrained=$(PT)/model --ensemble 8 --out $(PT)/heldout --no-mlflow

# The image every Kubeflow step runs in (docs/kubeflow.md, "Containers"): tagged
# gir:<version>-<commit>, GIT_COMMIT baked in, the dependencies from requirements.lock. With no
# registry (as here) its base is built from the Debian archive; elsewhere pin one by digest:
#   make image BASE_IMAGE=python:3.11-slim@sha256:<digest>
image:
	@bash tools/container/build.sh

# Push it and print the GIR_IMAGE (by digest) to compile and submit with:
#   make image-push REGISTRY=registry.example.com/ml
image-push: image
	@bash tools/container/push.sh "$(REGISTRY)"

# Both pipelines with every step in the image, against loopback S3 (moto) and a real MLflow
# server; installs podman/dockerd (as root) when missing. See tools/container/demo.sh.
container-demo: install
	@bash tools/container/demo.sh

clean-outputs:
	rm -rf data models checkpoints reports mlflow.db mlruns pipeline_root work
