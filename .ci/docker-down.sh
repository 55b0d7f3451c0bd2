#!/usr/bin/env bash
# Stop the private Docker engine started by docker-up.sh; idempotent.
# Containers are removed first; the data root (built images) is kept for the next run unless
# --purge is given.
set -euo pipefail

DIR="${OLLAMA_REGRESS_DOCKER_DIR:-${TMPDIR:-/tmp}/ollama-regress-docker}"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
STOP_TIMEOUT="${OLLAMA_REGRESS_DOCKER_STOP_TIMEOUT:-30}"

log() { echo "docker-down: $*" >&2; }

if [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE")" && kill -0 "$pid" 2>/dev/null; then
    if [ -S "$SOCK" ]; then
        ids="$(DOCKER_HOST="unix://$SOCK" timeout 10 docker ps -aq 2>/dev/null || true)"
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            DOCKER_HOST="unix://$SOCK" timeout 30 docker rm -f $ids >/dev/null 2>&1 || true
        fi
    fi
    kill -TERM "$pid"
    deadline=$(( $(date +%s) + STOP_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "dockerd (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    log "engine stopped (pid $pid)"
else
    log "no engine running"
fi
rm -f "$PIDFILE" "$SOCK"

# Mount points dockerd leaves under $DIR (e.g. exec/netns/default), deepest first.
mounts_under() {
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

if [ "${1:-}" = "--purge" ]; then
    # vfs layers are plain directories; containerd's leftovers live under exec/.
    dir="$(cd "$DIR" 2>/dev/null && pwd -P || echo "$DIR")"
    for mount in $(mounts_under "$dir"); do
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null \
            || log "cannot unmount $mount"
    done
    if ! rm -rf "$DIR"; then
        log "could not remove $DIR; still mounted: $(mounts_under "$dir" | tr '\n' ' ')"
        exit 1
    fi
    log "removed $DIR"
fi
