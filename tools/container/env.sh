# Sourced by the tools/container scripts: podman's settings for this sandbox, the image name.
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$TOOLS_DIR/../.." && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$TOOLS_DIR/containers.conf}"
GIR_VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT_DIR/gir/__init__.py")
# The commit the image's sources come from: the last one that changed them (a commit of docs
# or tools reuses the image); -dirty when the working tree differs from it.
IMAGE_PATHS=(Dockerfile .dockerignore requirements.lock pyproject.toml README.md params.yaml gir
             components pipelines)
image_commit() {
  local sha; sha=$(git -C "$ROOT_DIR" log -1 --format=%H -- "${IMAGE_PATHS[@]}" 2>/dev/null)
  [ -n "$sha" ] || { echo unknown; return; }
  if [ -n "$(git -C "$ROOT_DIR" status --porcelain -- "${IMAGE_PATHS[@]}" 2>/dev/null)" ]; then
    echo "$sha-dirty"; else echo "$sha"; fi
}
