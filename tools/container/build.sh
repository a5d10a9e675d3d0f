#!/usr/bin/env bash
# Build the GIR image with podman: tagged gir:<version>-<commit12> and gir:<version>, GIT_COMMIT
# baked in. The base: $BASE_IMAGE when given (e.g. python:3.11-slim@sha256:... where a
# registry is reachable), else one made from the Debian archive (base.sh). The host's CA bundle
# and pip configuration are mounted for the build only. Re-running reuses every cached layer.
# Prints the image name (localhost/gir:<version>-<commit12>) on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"
fail() { echo "image: error: $*" >&2; exit 2; }
command -v podman >/dev/null 2>&1 || fail "no container engine (podman): run tools/container/install-tools.sh as root"
BASE="${BASE_IMAGE:-}"
[ -n "$BASE" ] || BASE=$("$TOOLS_DIR/base.sh") || exit 2
COMMIT=$(image_commit)
case "$COMMIT" in *-dirty) TAG="localhost/gir:$GIR_VERSION-${COMMIT:0:12}-dirty";; *) TAG="localhost/gir:$GIR_VERSION-${COMMIT:0:12}";; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# pip's configuration as the host has it (files + PIP_* variables) in one file; every local
# path it names (wheel folders, file:// indexes, constraints) is mounted read-only.
mounts=()
cert=$(python3 -m pip config get global.cert 2>/dev/null || true); cert=${PIP_CERT:-$cert}
for c in "$cert" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  [ -n "$c" ] && [ -f "$c" ] && { mounts+=(-v "$c:/run/host-certs/ca.crt:ro"); break; }
done
python3 - "$tmp/pip.conf" >"$tmp/paths" <<'PY'
import os, re, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
conf, paths = {}, set()
for line in out.splitlines():
    m = re.match(r"^(?::env:|global|install|download)\.([\w-]+)='(.*)'$", line)
    if not m or m.group(1) in ("cert", "client-cert", "user", "target", "prefix", "root"):
        continue
    key, value = m.groups()
    conf[key] = value
    for word in value.split():
        index = word.startswith("file://")   # a file:// index links to files beside it
        p = (word[7:] if index else word).rstrip("/")
        if p.startswith("/") and os.path.exists(p):
            paths.add(os.path.dirname(p) if index or os.path.isfile(p) else p)
with open(sys.argv[1], "w") as f:
    f.write("[global]\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
print("\n".join(sorted(paths)))
PY
mounts+=(-v "$tmp/pip.conf:/etc/pip.conf:ro")
while read -r p; do [ -n "$p" ] && mounts+=(-v "$p:$p:ro"); done <"$tmp/paths"
echo "image: building $TAG from $BASE" >&2
if ! podman build --network=host "${mounts[@]}" --build-arg "BASE_IMAGE=$BASE" \
     --build-arg "GIT_COMMIT=$COMMIT" --label "gir.code=$(python3 "$ROOT_DIR/components/fingerprint.py" "$ROOT_DIR")" \
     -t "$TAG" -t "localhost/gir:$GIR_VERSION" -f "$ROOT_DIR/Dockerfile" "$ROOT_DIR" \
     >"$tmp/build.log" 2>&1; then
  cp "$tmp/build.log" /tmp/gir-image-build.log
  fail "image build failed (log: /tmp/gir-image-build.log)"
fi
echo "$TAG"
