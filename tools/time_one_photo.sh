#!/bin/bash
# Time `gir deblur x.jpg -o out/` on one 1280x720 photo from a fresh clone of this repository:
# with the shipped model, then with a registry champion (a SQLite store in the photo's folder
# whose @champion is the shipped weights, so the network costs the same): the first champion
# run resolves through MLflow and fills the cache, the next ones use the cached weights.
#   tools/time_one_photo.sh [WORKDIR]      (uses .venv/bin/python; run on an idle machine)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
WORK=${1:-$(mktemp -d)}
git clone -q "$REPO" "$WORK/clone"
export PYTHONPATH=$WORK/clone MLFLOW_DISABLE_TELEMETRY=true GIR_CACHE=$WORK/cache
mkdir -p "$WORK/shipped" "$WORK/champion"
"$PY" -c "from skimage import data; from PIL import Image
Image.fromarray(data.astronaut()).resize((1280, 720)).save('$WORK/x.jpg', quality=90)"
cp "$WORK/x.jpg" "$WORK/shipped/"; cp "$WORK/x.jpg" "$WORK/champion/"
(cd "$WORK/champion" && "$PY" - <<'PYEOF' >/dev/null 2>&1
import mlflow
from gir.nn.shipped import shipped_model_dir
from gir.tracking.pyfunc import log_deblur_pyfunc
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("gir")
with mlflow.start_run():
    info = log_deblur_pyfunc(mlflow, shipped_model_dir())
version = mlflow.register_model(info.model_uri, "gir-deblur").version
mlflow.MlflowClient().set_registered_model_alias("gir-deblur", "champion", version)
PYEOF
)
t() { /usr/bin/time -f "$1: %e s wall, %U+%S s CPU" "${@:2}" 2>&1 >/dev/null \
        | grep -v '^gir: model\|^deblur:' || true; }
echo "$(git -C "$REPO" rev-parse --short HEAD), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
t "gir --help" "$PY" -m gir --help
for i in 1 2 3; do (cd "$WORK/shipped" && rm -rf out && t "shipped #$i" "$PY" -m gir deblur x.jpg -o out/); done
for i in 1 2 3; do (cd "$WORK/champion" && rm -rf out && t "champion #$i" "$PY" -m gir deblur x.jpg -o out/); done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
