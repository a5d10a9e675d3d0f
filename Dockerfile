# The image the Kubeflow components run in: Python + torch + the gir package (with kfp),
# installed the way `make install` does it (torch pinned first, then the project).
#
#   CPU (default):  docker build -t gir:0.1.0 --build-arg GIT_COMMIT=$(git rev-parse HEAD) .
#   CUDA:           docker build -t gir:0.1.0-cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where torch==2.13.0 comes from. Empty: the default index, whose Linux wheels bundle CUDA
# (right for GPU images). For a small CPU-only image pass PyTorch's CPU wheel index here.
ARG TORCH_INDEX_URL=
# Recorded on every MLflow run (the image has no .git): pass $(git rev-parse HEAD).
ARG GIT_COMMIT=unknown

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GIR_GIT_COMMIT=${GIT_COMMIT} \
    MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    DVC_NO_ANALYTICS=1

# python:*-slim has Python; CUDA base images (Ubuntu) need it installed.
RUN if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && pip install --upgrade pip

# torch first and pinned (its own layer: it is the big one and rarely changes).
RUN if [ -n "${TORCH_INDEX_URL}" ]; then \
        pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0; \
    else \
        pip install torch==2.13.0; \
    fi

WORKDIR /app
COPY pyproject.toml README.md params.yaml dvc.yaml ./
COPY gir ./gir
COPY components ./components
COPY pipelines ./pipelines
RUN pip install . && gir --version && python -c "import components, pipelines, kfp"

CMD ["gir", "--help"]
