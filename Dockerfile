# Kronos Serve: gRPC on 50051 and the /v1 REST API on 8000, the embedded default model baked in.
#
#   make image                    # = docker build --build-arg VERSION=<pyproject version> -t kronos-serve:<version> .
#   docker run --rm -p 50051:50051 -p 8000:8000 --read-only --tmpfs /tmp kronos-serve:0.1.0
#
# Official checkpoints: mount them read-only at /models and select them by directory, e.g.
#   docker run -v /srv/kronos:/models:ro \
#     -e KRONOS_MODEL_PATH=/models/Kronos-small -e KRONOS_TOKENIZER_PATH=/models/Kronos-Tokenizer-base ...
# (KRONOS_MODEL_PATH=/models/<predictor dir>, KRONOS_TOKENIZER_PATH=/models/<tokenizer dir>; each holds
# config.json + model.safetensors). Without them the embedded model answers.
#
# GPU: torch's CUDA wheels bring their own CUDA runtime (nvidia-* wheels), so only the torch index changes;
# the host needs the NVIDIA driver and container toolkit (docker run --gpus all -e KRONOS_DEVICE=cuda):
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t kronos-serve:0.1.0-cu128 .
# (Pick the cuXXX index torch 2.13.0 is published for; not built or run in CI.) A CUDA base image is
# optional (--build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu22.04, for example); a base
# without python3.11 gets it from apt (Ubuntu 22.04 has it; Ubuntu 24.04 does not, and its "ubuntu"
# user already holds uid 1000, so use a 22.04 base). Both stages start FROM the same base, so the venv's
# interpreter path is the same in the builder and the runtime.
#
# Credentials: set KRONOS_API_KEYS_FILE (a mounted keys file) or KRONOS_TRUSTED_CONTAINERS. With neither,
# the server makes a local dev key in KRONOS_DEV_KEYS_DIR=/tmp/kronos and prints how to use it; with a
# read-only root filesystem, /tmp must be writable (--tmpfs /tmp, or an emptyDir in Kubernetes).

ARG BASE_IMAGE=python:3.11.7-slim-bookworm

# ---- base: Python 3.11, from the image itself or from apt ----
FROM ${BASE_IMAGE} AS base
ARG DEBIAN_FRONTEND=noninteractive
# DL3008 (pin apt versions): which python3.11 build exists depends on the chosen base's distribution,
# and this branch runs only for a base without Python (the default base skips it)
# hadolint ignore=DL3008
RUN if ! command -v python3.11 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# ---- builder: a venv at /opt/venv with torch (pinned, from TORCH_INDEX_URL) and the package ----
FROM base AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# torch first (its own layer, cached across code changes), from its own index, so the package install
# finds the pin satisfied instead of resolving a CUDA build from PyPI; the pin must equal
# pyproject.toml's (tests/deploy checks it)
RUN python3.11 -m venv /opt/venv \
    && pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
COPY rest_bridge ./rest_bridge
# a regular (not editable) install: the default model is package data of kronos_server, so this
# bakes it into /opt/venv; the forecast proves torch, the package and the model work together
RUN pip install . \
    && kronos-serve forecast --csv server/kronos_server/default_model/data/regression_input.csv \
        --tail 128 --pred-len 2 --log-level WARNING > /dev/null

# ---- runtime: the base plus /opt/venv, nothing else ----
FROM base AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kronos-serve" \
      org.opencontainers.image.description="gRPC + REST prediction server for Kronos, the foundation model for financial candlesticks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# uid/gid 1000, numeric in USER below so Kubernetes runAsNonRoot can verify it; HOME is /tmp, the one
# place that must be writable
RUN groupadd --gid 1000 kronos \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kronos \
    && mkdir /models \
    && chown 1000:1000 /models

COPY --from=builder /opt/venv /opt/venv

# KRONOS_DEV_KEYS_DIR under /tmp so the root filesystem can be read-only (the CLI itself sets
# OMP_WAIT_POLICY=PASSIVE before torch loads, so it is not repeated here)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    KRONOS_HOST=0.0.0.0 \
    KRONOS_DEV_KEYS_DIR=/tmp/kronos

# an empty, root-owned working directory: the server writes nothing to its cwd
WORKDIR /app
USER 1000:1000

# gRPC (KRONOS_GRPC_PORT) and the REST API (KRONOS_HTTP_PORT)
EXPOSE 50051 8000

# readiness: SERVING once the model is loaded and warm, NOT_SERVING again while draining. The probe is
# the bundled grpc_health_probe-compatible client; exec form cannot read variables, so a changed
# KRONOS_GRPC_PORT or gRPC TLS needs its own --health-cmd (Kubernetes ignores HEALTHCHECK and uses
# its own gRPC probes).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["kronos-client", "health", "-addr", "127.0.0.1:50051", "-service", "kronos.v1.KronosPredictor"]

# exec form: kronos-serve is PID 1 and gets SIGTERM itself; it handles SIGTERM/SIGINT (readiness goes
# NOT_SERVING, in-flight calls finish within KRONOS_SHUTDOWN_GRACE, exit 0), and it starts no child
# processes to reap, so no init such as tini is needed. Other commands: docker run IMAGE forecast ...
ENTRYPOINT ["kronos-serve"]
CMD ["serve"]
