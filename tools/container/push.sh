#!/usr/bin/env bash
# Push the image built by make image to REGISTRY (host[:port]/path) and print the reference
# by digest that GIR_IMAGE (or --image) should name, so every pod runs exactly this build.
set -euo pipefail
. "$(dirname "$0")/env.sh"
REGISTRY=${1:-}
[ -n "$REGISTRY" ] || { echo "image-push: error: set REGISTRY, e.g. make image-push REGISTRY=registry.example.com/ml" >&2; exit 2; }
IMAGE=$(bash "$TOOLS_DIR/build.sh") || exit 2
TARGET="${REGISTRY%/}/gir:${IMAGE##*:}"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
podman push --digestfile "$tmp" "$IMAGE" "docker://$TARGET" >&2 \
  || { echo "image-push: error: could not push $TARGET (podman login $REGISTRY?)" >&2; exit 2; }
echo "export GIR_IMAGE=${REGISTRY%/}/gir@$(cat "$tmp")"
