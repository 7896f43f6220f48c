# syntax=docker/dockerfile:1.7
#
# The hypermarker CDS Hooks service (and the `hypermarker monitor` job: same image, other args).
#
#   docker build -t hypermarker .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v hm-data:/var/lib/hypermarker \
#       -e HYPERMARKER_AUTH_MODE=demo hypermarker                      # local try-out only
#
# GPU build (onnxruntime-gpu instead of onnxruntime; a base image with CUDA 12 + cuDNN 9 and
# Python 3.11 is needed for the CUDA provider to load, otherwise the service stays on the CPU):
#   docker build --build-arg UV_SYNC_FLAGS="--extra gpu --no-group cpu" \
#                --build-arg PYTHON_IMAGE=<CUDA runtime image with python3.11> -t hypermarker:gpu .
#
# Settings come from HYPERMARKER_* environment variables (service/settings.py); the image
# defaults to JWT client auth and keeps its only writable state under /var/lib/hypermarker
# (mount a volume there) and /tmp, so the root filesystem can be mounted read-only.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- build: the locked environment in /app/.venv -------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /bin/
ARG UV_SYNC_FLAGS=""
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Phase 1: third-party dependencies only (this layer changes only when uv.lock does).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    uv sync --locked --no-dev --no-install-project --no-editable ${UV_SYNC_FLAGS}

# Phase 2: the project itself, installed as a wheel (models/artifacts and the migrations ship
# inside the packages), so the runtime image needs no source tree.
COPY . /src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable ${UV_SYNC_FLAGS}

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# LightGBM (TreeSHAP explanations) links against the OpenMP runtime.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hypermarker \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin hypermarker \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/hypermarker /var/lib/hypermarker/spool

COPY --from=build /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/.cache \
    HYPERMARKER_AUTH_MODE=jwt \
    HYPERMARKER_LOG_FORMAT=json \
    HYPERMARKER_SPOOL_DIR=/var/lib/hypermarker/spool \
    HYPERMARKER_DATABASE_URL=sqlite:////var/lib/hypermarker/audit.db

WORKDIR /var/lib/hypermarker
USER 10001:10001
EXPOSE 8080

# Docker's own check; Kubernetes uses the chart's probes (/health/live, /health/ready) instead.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2)"]

ENTRYPOINT ["hypermarker"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
