#!/usr/bin/env bash
# Install what the container run needs, if missing: podman + buildah (build the image),
# mmdebstrap (its base from the Debian archive), docker.io (dockerd: kfp.local.DockerRunner
# talks to it; it does not work against podman's API socket). Debian/Ubuntu, as root.
set -euo pipefail
missing=()
command -v podman     >/dev/null 2>&1 || missing+=(podman)
command -v buildah    >/dev/null 2>&1 || missing+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v dockerd    >/dev/null 2>&1 || missing+=(docker.io)
command -v runc       >/dev/null 2>&1 || missing+=(runc)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "container-demo: error: no container engine: install ${missing[*]} (apt-get install, as root)" >&2
  exit 2
fi
echo "container-demo: installing ${missing[*]} (apt)" >&2
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    uidmap fuse-overlayfs slirp4netns iptables ca-certificates; } >/tmp/gir-apt.log 2>&1 || {
  echo "container-demo: error: no container engine: apt-get install ${missing[*]} failed (see /tmp/gir-apt.log)" >&2
  exit 2; }
