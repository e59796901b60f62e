# agent-service: one image for every command (api, worker, sim-llm, ...), chosen by the
# container's arguments: `docker run IMAGE worker`. Build and run: docs/container.md.
#
#   DOCKER_BUILDKIT=1 docker build -t agent-service .
#   DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/path/to/corporate-ca.pem -t agent-service .
#
# No `# syntax=` line on purpose: it would pull a Dockerfile frontend image from a registry, and
# air-gapped builders have none. Everything here works with the frontend built into BuildKit
# (Docker 20.10 and later).

# Any Debian-based image with CPython 3.11 at `python3` and the venv module; the final stage
# uses the same one (the virtualenv links to its interpreter).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ARG UV_VERSION=0.13.9
# uv: never download a Python (use the base's), copy from its cache mount instead of
# hard-linking across file systems, and compile bytecode now because the root file system of
# the final image is read-only (no .pyc can be written at run time; cold imports would be slow).
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Optional secret `ca`: a CA bundle for TLS-intercepting proxies. It is exported for the
# pip/uv commands of each RUN only and never stored in a layer.
RUN --mount=type=secret,id=ca,required=false \
    if [ -f /run/secrets/ca ]; then \
        export SSL_CERT_FILE=/run/secrets/ca UV_SYSTEM_CERTS=1 PIP_CERT=/run/secrets/ca; \
    fi \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

# Dependencies first (a layer that changes only with uv.lock), then the project itself.
COPY pyproject.toml uv.lock ./
RUN --mount=type=secret,id=ca,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -f /run/secrets/ca ]; then \
        export SSL_CERT_FILE=/run/secrets/ca UV_SYSTEM_CERTS=1 PIP_CERT=/run/secrets/ca; \
    fi \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-editable --no-install-project

COPY README.md ./
COPY src/ src/
# uv's lock file is created world-writable and serves only uv itself: not shipped.
RUN --mount=type=secret,id=ca,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -f /run/secrets/ca ]; then \
        export SSL_CERT_FILE=/run/secrets/ca UV_SYSTEM_CERTS=1 PIP_CERT=/run/secrets/ca; \
    fi \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-editable \
    && rm -f /app/.venv/.lock \
    && /app/.venv/bin/agent-service --version

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# A numeric, non-root user whose home is /tmp: Kubernetes can check runAsNonRoot without a
# name lookup, and libraries that ask for a user name (getpass) still find one.
RUN groupadd --system --gid 10001 agent \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin agent

COPY --from=builder /app/.venv /app/.venv
COPY docker/healthcheck.py /app/healthcheck.py

# The root file system may be read-only: every path a library writes to points under /tmp
# (mount an emptyDir or tmpfs there). HOME covers ~/.cache and gunicorn's control socket;
# TMPDIR covers tempfile (prometheus multiprocess directory, Celery); HF_HOME and
# XDG_CACHE_HOME cover tokenizer downloads. LiteLLM reads its bundled tokenizer files and,
# with LITELLM_LOCAL_MODEL_COST_MAP, its bundled price map: it fetches nothing at import.
# The worker's probe files live in /tmp too (HEALTHCHECK and Kubernetes probes read them).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/hf \
    AGENT_WORKER_HEARTBEAT_FILE=/tmp/worker-heartbeat \
    AGENT_WORKER_READY_FILE=/tmp/worker-ready

WORKDIR /app
USER 10001:10001

# 8000: the API (AGENT_API_PORT); 9100: /metrics of api and worker (AGENT_METRICS_PORT).
EXPOSE 8000 9100

# Docker's own check, by command: api and mcp-demo -> GET /healthz, sim-llm -> GET /v1/models,
# worker -> heartbeat file younger than 60 s. Kubernetes ignores it and uses the chart's probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]

# Last, so that a new revision or date invalidates no cached layer.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="agent-service" \
      org.opencontainers.image.description="Kubernetes-native service for running LLM agents: FastAPI API, Celery workers on Redis, LiteLLM models, an offline LLM simulator." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="docs/container.md"

ENTRYPOINT ["agent-service"]
CMD ["api"]
