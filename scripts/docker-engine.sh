#!/usr/bin/env bash
# Make sure the installed Docker engine answers, starting it when it is installed but stopped:
# systemctl on a systemd machine, else dockerd in the background (log: $TMPDIR/dockerd.log).
# Exits 0 either way; the container tests decide what a missing engine means (skip, or fail
# under CI=true).
#   scripts/docker-engine.sh
set -uo pipefail

log() { echo "docker-engine: $*" >&2; }
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    return 1; fi
}
answers() { docker info >/dev/null 2>&1 || as_root docker info >/dev/null 2>&1; }

command -v docker >/dev/null || exit 0
answers && exit 0
dockerd_bin="$(command -v dockerd || echo /usr/sbin/dockerd)"
if [[ -d /run/systemd/system ]]; then
  log "starting the docker service"
  as_root systemctl start docker || log "could not start the docker service"
elif [[ -x "$dockerd_bin" ]]; then
  dockerd_log="${TMPDIR:-/tmp}/dockerd.log"
  log "starting dockerd (log: $dockerd_log)"
  as_root nohup "$dockerd_bin" >"$dockerd_log" 2>&1 </dev/null &
else
  exit 0
fi
for _ in $(seq 1 60); do answers && exit 0; sleep 1; done
log "the Docker engine did not answer within 60 s; the container tests will not run"
exit 0
