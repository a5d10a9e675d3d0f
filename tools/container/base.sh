#!/usr/bin/env bash
# Build the image's base from the Debian archive apt already uses (no container registry
# needed, no mirror named here): mmdebstrap bookworm with the host's own apt sources, then
# `podman import`. Bookworm's python3 is 3.11 (the local CPU torch wheel's); gcc/g++ and the
# Python headers are in it so torch.compile works. Prints the base image's name.
set -euo pipefail
: "${CONTAINERS_CONF:=$(cd "$(dirname "$0")" && pwd)/containers.conf}"; export CONTAINERS_CONF
PKGS=python3,python3-venv,python3-dev,gcc,g++,libc6-dev,libgomp1,ca-certificates
TAG="localhost/gir-base:bookworm-$(echo "$PKGS" | cksum | cut -d' ' -f1)"
if podman image exists "$TAG"; then echo "$TAG"; exit 0; fi
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list
[ -f "$SOURCES" ] || { echo "image: error: no apt sources file to build a base from; pass BASE_IMAGE=" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "image: building the base $TAG from the Debian archive (mmdebstrap)" >&2
mmdebstrap --quiet --variant=minbase --include="$PKGS" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$tmp/rootfs.tar" "$SOURCES" >"$tmp/log" 2>&1 \
  || { cp "$tmp/log" /tmp/gir-base-build.log; echo "image: error: mmdebstrap failed building the base (log: /tmp/gir-base-build.log)" >&2; exit 2; }
podman import --quiet --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$TAG" >/dev/null
echo "$TAG"
