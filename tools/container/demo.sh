#!/usr/bin/env bash
# make container-demo: the training pipeline and gir-rectify with every step in the image.
#  1. container tools (apt, as root, if missing); 2. the image (make image; cached layers are
#  reused); 3. dockerd + the image loaded in it; moto's S3 server + a real `mlflow server`
#  (sqlite backend, artifacts in S3) on loopback; 4. `gir pipeline run --local --runner docker`
#  with params.yaml (the demo's params; CONTAINER_DEMO_SET adds --set overrides); 5. gir-rectify
#  over s3://gir-photos/in/ twice (the second run writes nothing); 6. stops what it started.
# Everything it writes goes to $GIR_DEMO_DIR (default /tmp/gir-container-demo) and dockerd's
# data root (/var/lib/gir-docker, kept so the loaded image is reused); nothing in the checkout.
set -uo pipefail
. "$(dirname "$0")/env.sh"
WORK=${GIR_DEMO_DIR:-/tmp/gir-container-demo}
PY=${GIR_PYTHON:-$ROOT_DIR/.venv/bin/python}
GIR=$(dirname "$PY")/gir
say() { echo "container-demo: $*" >&2; }
fail() { echo "container-demo: error: $*" >&2; exit 2; }
last_error() { grep -h "error:" "$@" 2>/dev/null | tail -1 | sed 's/^.*error: //'; }
PIDS=()
stop_all() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null && { for _ in $(seq 60); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.5; done; }
  done
}
trap stop_all EXIT
trap 'exit 130' INT TERM
start=$SECONDS
[ -x "$GIR" ] || fail "no $GIR: run make install first"
rm -rf "$WORK"; mkdir -p "$WORK"
bash "$TOOLS_DIR/install-tools.sh" || exit 2
IMAGE=$(bash "$TOOLS_DIR/build.sh") || exit 2
say "image $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}'), built or reused in $((SECONDS - start)) s)"
out=$(bash "$TOOLS_DIR/engine.sh" "$WORK" "$IMAGE") || exit 2
PIDS+=("${out% *}"); export DOCKER_HOST="unix://${out#* }"
"$PY" "$TOOLS_DIR/services.py" "$WORK" >"$WORK/services.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1200); do [ -f "$WORK/env.sh" ] && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || fail "stand-in services did not start: $(tail -1 "$WORK/services.log")"; sleep 0.5; done
[ -f "$WORK/env.sh" ] || fail "stand-in services did not start in 600 s"
. "$WORK/env.sh"
say "S3 (moto) at $AWS_ENDPOINT_URL, MLflow server at $MLFLOW_TRACKING_URI"
cd "$WORK"   # the steps never see the checkout; the CLI reads only params.yaml from it
t=$SECONDS
# shellcheck disable=SC2086
"$GIR" pipeline run --local --runner docker --image "$IMAGE" --params "$ROOT_DIR/params.yaml" \
    --root "$WORK/pipeline_root" ${CONTAINER_DEMO_SET:-} >"$WORK/registration.json" 2>"$WORK/train.log" \
  || fail "training pipeline: $(last_error "$WORK/train.log") (log: $WORK/train.log)"
say "training pipeline in containers: $((SECONDS - t)) s"
"$PY" - "$WORK/registration.json" <<'PY' || exit 2
import json, sys
d = json.load(open(sys.argv[1]))
print(f"registered gir-deblur version {d['version']} as @{d['alias']} "
      f"(test PSNR {d.get('new_score', float('nan')):.3f} dB)")
PY
"$PY" "$TOOLS_DIR/check_runs.py" "$IMAGE" || exit 2
"$PY" "$TOOLS_DIR/photos.py" upload s3://gir-photos/in/ || exit 2
for pass in 1 2; do
  t=$SECONDS
  "$GIR" pipeline run --local --runner docker --image "$IMAGE" --pipeline rectify \
      --source s3://gir-photos/in/ --dest s3://gir-photos/out/ --shards 2 \
      --endpoint-url "$AWS_ENDPOINT_URL" --root "$WORK/pipeline_root" \
      >"$WORK/rectify$pass.json" 2>"$WORK/rectify$pass.log" \
    || fail "gir-rectify: $(last_error "$WORK/rectify$pass.log") (log: $WORK/rectify$pass.log)"
  say "gir-rectify run $pass in containers: $((SECONDS - t)) s: $(cat "$WORK/rectify$pass.json")"
done
"$PY" "$TOOLS_DIR/photos.py" check s3://gir-photos/out/ "$WORK/rectify1.json" "$WORK/rectify2.json" || exit 2
say "done in $((SECONDS - start)) s; logs and the MLflow store in $WORK"
