#!/usr/bin/env bash
# Install what the project needs on a Debian/Ubuntu machine, each step skipped when done:
# uv (via pip), system packages (via apt), and the locked Python environment (uv sync).
#   scripts/bootstrap.sh [apt-package ...]     e.g. scripts/bootstrap.sh redis-server
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "bootstrap: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || { log "apt-get not found; install: ${missing[*]}"; return 1; }
  if ((apt_updated == 0)); then as_root apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if ! command -v uv >/dev/null; then
  log "installing uv with pip"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv \
    || python3 -m pip install --quiet --break-system-packages uv
  export PATH="$HOME/.local/bin:$PATH"
fi

if (($# > 0)); then apt_install "$@"; fi

uv sync --frozen --quiet
