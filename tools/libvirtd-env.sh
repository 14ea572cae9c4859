#!/bin/bash
# A private libvirtd for functional tests.
#
#   libvirtd-env.sh start|stop|status|uri [DIR]
#
# All of the daemon's state (config, sockets, domain definitions, QEMU
# capability cache, logs) lives under DIR (default $SNAPDRIVER_LIBVIRT_DIR,
# else <repo>/.run/libvirt). A root libvirtd always uses /etc/libvirt,
# /run/libvirt and /var/{lib,log,cache}/libvirt, so it runs in its own mount
# namespace where those paths are bind mounts of DIR/<same path>; the host's
# real directories are never written to (missing mount points are created
# empty). Keep DIR between runs: the first start probes QEMU (several
# seconds), later starts reuse the cached capabilities.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIBVIRTD=${LIBVIRTD:-/usr/sbin/libvirtd}
START_TIMEOUT=${SNAPDRIVER_LIBVIRT_START_TIMEOUT:-60}
STOP_TIMEOUT=${SNAPDRIVER_LIBVIRT_STOP_TIMEOUT:-30}
BOUND_DIRS=(etc/libvirt run/libvirt var/lib/libvirt var/log/libvirt var/cache/libvirt)

die() { echo "libvirtd-env: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status|uri [DIR]" >&2
    exit 2
}

# Prints the PID in $1 if it names a live process running $2 (guards against
# a stale pidfile whose PID has been reused by something else).
live_pid() {
    local pidfile=$1 exe=$2 pid
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"$exe"* ]] || return 1
    echo "$pid"
}

daemon_pid() { live_pid "$PIDFILE" "$(basename "$LIBVIRTD")"; }

# Waits up to $2 seconds for PID $1 to exit.
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

terminate() {
    local pid=$1 what=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
        echo "libvirtd-env: $what (pid $pid) ignored SIGTERM, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || die "$what (pid $pid) did not exit"
    fi
}

# libvirtd leaves QEMU running when it exits; these are the guests it started
# from DIR, found by the pidfiles libvirt keeps for them.
kill_guests() {
    local pidfile pid
    shopt -s nullglob
    for pidfile in "$DIR"/run/libvirt/qemu/*.pid; do
        if pid=$(live_pid "$pidfile" qemu-system); then
            terminate "$pid" "qemu $(basename "$pidfile" .pid)"
        fi
    done
    shopt -u nullglob
}

write_config() {
    cat >"$DIR/etc/libvirt/qemu.conf" <<'EOF'
# Written by tools/libvirtd-env.sh. As root with no per-guest ownership
# changes, sandboxing or cgroups: the test host has no systemd and no
# security modules, and running QEMU as another user makes libvirt re-probe
# capabilities on every start.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
    cat >"$DIR/etc/libvirt/libvirtd.conf" <<EOF
# Written by tools/libvirtd-env.sh.
unix_sock_dir = "$SOCK_DIR"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "${SNAPDRIVER_LIBVIRT_LOG_LEVEL:-3}:file:$DIR/var/log/libvirt/libvirtd.log"
log_filters = "${SNAPDRIVER_LIBVIRT_LOG_FILTERS:-}"
EOF
}

# Runs inside the new mount namespace: bind DIR over the system paths, then
# become libvirtd (which forks into the background once it is listening).
in_namespace() {
    local d
    for d in "${BOUND_DIRS[@]}"; do
        mount --bind "$DIR/$d" "/$d"
    done
    exec "$LIBVIRTD" --daemon -f "$DIR/etc/libvirt/libvirtd.conf" -p "$PIDFILE"
}

answers() { timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; }

start() {
    local pid d deadline
    if pid=$(daemon_pid); then
        die "already running (pid $pid) in $DIR"
    fi
    # Left over from a daemon that died without 'stop'.
    kill_guests
    rm -rf "$DIR/run/libvirt" "$SOCK_DIR"
    mkdir -p "$DIR"
    for d in "${BOUND_DIRS[@]}"; do
        mkdir -p "$DIR/$d"
        [[ -d /$d ]] || mkdir -p "/$d"
    done
    mkdir -p "$SOCK_DIR"
    chmod 0700 "$SOCK_DIR"
    write_config

    if ! unshare -m --propagation private "${BASH_SOURCE[0]}" __in-namespace "$DIR" \
            >"$DIR/libvirtd.stderr" 2>&1; then
        cat "$DIR/libvirtd.stderr" >&2
        die "libvirtd failed to start"
    fi
    pid=$(daemon_pid) || die "libvirtd did not write $PIDFILE"

    deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$DIR/var/log/libvirt/libvirtd.log" >&2 2>/dev/null || true
            die "libvirtd (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$DIR/var/log/libvirt/libvirtd.log" >&2 2>/dev/null || true
            die "libvirtd (pid $pid) did not answer on $URI within ${START_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

stop() {
    local pid
    # Daemon first, so that it does not react to its guests going away.
    if pid=$(daemon_pid); then
        terminate "$pid" libvirtd
    fi
    kill_guests
    rm -f "$PIDFILE"
}

status() {
    local pid
    if pid=$(daemon_pid); then
        echo "running (pid $pid) $URI"
    else
        echo "stopped"
        return 3
    fi
}

cmd=${1:-}
[[ -n $cmd ]] || usage
DIR=${2:-${SNAPDRIVER_LIBVIRT_DIR:-$REPO/.run/libvirt}}
[[ $DIR != *[[:space:]?\&#%]* ]] || die "DIR must not contain spaces or URI characters: $DIR"
DIR=$(realpath -m "$DIR")
PIDFILE=$DIR/libvirtd.pid
SOCK_DIR=$DIR/sock
URI="qemu:///system?socket=$SOCK_DIR/libvirt-sock"
# sun_path holds 108 bytes; the admin socket has the longest name.
((${#SOCK_DIR} + 19 < 108)) || die "DIR is too long for a unix socket path: $DIR"

case $cmd in
    start) start ;;
    stop) stop ;;
    status) status ;;
    uri) echo "$URI" ;;
    __in-namespace) in_namespace ;;
    *) usage ;;
esac
