#!/usr/bin/env bash
# Build the container image (one image for api, worker, sim-llm; see docs/container.md).
#   scripts/build-image.sh [extra docker build arguments]
# Environment (all optional):
#   IMAGE       tag to build                       (default agent-service:dev)
#   BASE_IMAGE  base image with CPython 3.11        (default: the Dockerfile's, python:3.11-slim-bookworm)
#   BUILD_CA    CA bundle for a TLS-intercepting proxy, passed as the BuildKit secret `ca`
#   DOCKER      docker client                       (default /usr/bin/docker if present, else docker)
# The tests call this script too (tests/container), so users and CI build the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-agent-service:dev}
if [[ -z "${DOCKER:-}" ]]; then
  # Prefer the distribution's client: it has BuildKit built in, while a client whose `build`
  # goes through buildx fails when the buildx plugin is missing.
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

args=(--tag "$IMAGE")
if [[ -n "${BASE_IMAGE:-}" ]]; then args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
if [[ -n "${BUILD_CA:-}" ]]; then
  [[ -r "$BUILD_CA" ]] || { echo "build-image: BUILD_CA=$BUILD_CA is not readable" >&2; exit 1; }
  args+=(--secret "id=ca,src=$BUILD_CA")
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
args+=(
  --build-arg "VERSION=${version:-0.0.0}"
  --build-arg "REVISION=$revision"
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)

echo "build-image: $DOCKER build ${args[*]} $* ." >&2
DOCKER_BUILDKIT=1 exec "$DOCKER" build "${args[@]}" "$@" .
