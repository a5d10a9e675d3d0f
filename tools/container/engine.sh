#!/usr/bin/env bash
# Start Debian's dockerd on a private socket (kfp.local.DockerRunner talks to it; podman's API
# socket races on auto-remove) and load the podman-built image into it unless it is there.
# Usage: engine.sh WORKDIR IMAGE   -> prints "PID SOCKET"; the caller stops PID.
set -euo pipefail
. "$(dirname "$0")/env.sh"
WORK=$1 IMAGE=$2
fail() { echo "container-demo: error: $*" >&2; exit 2; }
command -v dockerd >/dev/null 2>&1 || fail "no container engine (dockerd): run tools/container/install-tools.sh as root"
DATA=${GIR_DOCKER_ROOT:-/var/lib/gir-docker}   # kept between runs: the loaded image is reused
SOCK="$WORK/docker.sock"
EXEC=/run/gir-docker   # its network namespace mount outlives dockerd: not under $WORK
mkdir -p "$DATA" "$EXEC"
dockerd --host "unix://$SOCK" --data-root "$DATA" --exec-root "$EXEC" \
  --pidfile "$WORK/dockerd.pid" --iptables=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
PID=$!
export DOCKER_HOST="unix://$SOCK"
for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 1
  kill -0 $PID 2>/dev/null || { fail "no container engine: dockerd exited (log: $WORK/dockerd.log)"; }
done
docker version >/dev/null 2>&1 || { kill $PID; fail "no container engine: dockerd does not answer"; }
want=$(podman image inspect --format '{{.Id}}' "$IMAGE")
have=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "${have#sha256:}" != "$want" ]; then
  echo "container-demo: loading $IMAGE into dockerd" >&2
  podman save --format docker-archive "$IMAGE" | docker load >/dev/null \
    || { kill $PID; fail "could not load $IMAGE into dockerd"; }
fi
echo "$PID $SOCK"
