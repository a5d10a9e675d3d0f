# The image every Kubeflow step runs in: Python 3.11, a C compiler (torch.compile), the locked
# dependencies (requirements.lock: the same versions and hashes `make install` uses) and gir.
#
#   make image                      # here: the base is built from the Debian archive (no registry)
#   make image BASE_IMAGE=python:3.11-slim@sha256:<digest>   # elsewhere: a base pinned by digest
#
# Build-time only (never in a layer): a CA bundle at /run/host-certs/ca.crt and a pip
# configuration at /etc/pip.conf, mounted by tools/container/build.sh when the host has them.
# CUDA: BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 with a lock resolved for it.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    DVC_NO_ANALYTICS=1

# Python 3 with venv and headers, and gcc/g++ (torch.compile's inductor compiles C++):
# installed only where the base lacks them (the Debian-archive base already has them).
RUN if ! { command -v gcc && command -v g++ && python3 -m venv --help \
           && python3 -c "import sysconfig,os,sys; sys.exit(not os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))"; } >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc g++ \
           libc6-dev ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

# The locked dependencies, hash-checked (their own layer: it is the big one and rarely changes).
COPY requirements.lock /tmp/requirements.lock
RUN if [ -f /run/host-certs/ca.crt ]; then export PIP_CERT=/run/host-certs/ca.crt; fi \
    && pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

WORKDIR /app
COPY pyproject.toml README.md params.yaml ./
COPY gir ./gir
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --no-deps --no-build-isolation . && rm -rf build *.egg-info \
    && gir --version && python -c "import components, pipelines, kfp, torch"

# The commit the image was built from: every MLflow run records it (the image has no .git).
ARG GIT_COMMIT=unknown
# No git in the image: GitPython (via mlflow) stays quiet instead of warning in every step.
ENV GIR_GIT_COMMIT=${GIT_COMMIT} GIT_PYTHON_REFRESH=quiet
LABEL org.opencontainers.image.revision=${GIT_COMMIT} org.opencontainers.image.title=gir
CMD ["gir", "--help"]
