#!/usr/bin/env bash
# Regenerate the two lock files from pyproject.toml (pip-tools, hashes of every file of each
# pinned version): requirements-dev.lock (runtime + test extras: `make install`) and
# requirements.lock (runtime only: the image), the latter a subset of the former so both pin
# the same versions. Keep versions already locked: LOCK_KEEP=1 (default) constrains the new
# resolution by the current dev lock; LOCK_KEEP=0 resolves afresh. Takes ~8 min (hashing).
# torch resolves to the local CPU wheel on these machines (torch==2.13.0+cpu); elsewhere
# PyTorch's CPU index (https://download.pytorch.org/whl/cpu) serves the same file.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv" && "$tmp/venv/bin/pip" install -q pip-tools==7.7.0
cp pyproject.toml "$tmp/"
: > "$tmp/keep.txt"
if [ "${LOCK_KEEP:-1}" = 1 ] && [ -f requirements-dev.lock ]; then
  grep -E '^[A-Za-z0-9].*==' requirements-dev.lock | awk '{print $1}' > "$tmp/keep.txt"
fi
( cd "$tmp" && venv/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
    --extra test -c keep.txt --no-header -o dev.lock pyproject.toml \
  && grep -E '^[A-Za-z0-9].*==' dev.lock | awk '{print $1}' > pins.txt \
  && venv/bin/pip-compile -q --allow-unsafe --strip-extras -c pins.txt --no-header \
    -o runtime.txt pyproject.toml )
# setuptools builds gir itself inside the image (pip install --no-build-isolation).
grep -E '^setuptools==' "$tmp/pins.txt" >> "$tmp/runtime.txt"
{ echo "# GIR's dependencies with the test extras, pinned with hashes (make install)."
  echo "# Regenerate with tools/container/lock.sh; the image uses requirements.lock (a subset)."
  sed -e '/^ *#   -c keep.txt$/d' -e 's/^\( *\)# via -c keep.txt$/\1# via pyproject.toml/' \
      "$tmp/dev.lock"; } > requirements-dev.lock
python3 tools/container/lock_subset.py requirements-dev.lock "$tmp/runtime.txt" requirements.lock
echo "wrote requirements-dev.lock and requirements.lock"
