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
# empty). Keep DIR between runs: the first start probes QEMU (~1.3 s), later
# starts reuse the cached capabilities (~0.13 s).
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
LIBVIRTD=${LIBVIRTD:-/usr/sbin/libvirtd}
START_TIMEOUT=${SNAPDRIVER_LIBVIRT_START_TIMEOUT:-60}
STOP_TIMEOUT=${SNAPDRIVER_LIBVIRT_STOP_TIMEOUT:-30}
BOUND_DIRS=(etc/libvirt run/libvirt var/lib/libvirt var/log/libvirt var/cache/libvirt)

# libvirt double-forks QEMU, so guests become orphans. Reparented to this
# machine's PID 1, an exited QEMU stays a zombie for up to ~2 s, and libvirt
# (which polls kill(pid, 0)) counts that against every virDomainDestroy.
# The same wait made each QEMU capability probe, and so a first start, ~8 s.
# This parent is a child subreaper that collects them at once, and exits when
# libvirtd and all its guests are gone.
REAPER=$REPO/tools/subreaper.py

die() { echo "libvirtd-env: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status|uri [DIR]" >&2
    exit 2
}

# Zombies count as gone: nothing can be done to them but reaping.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Prints the PID in $1 if it names a live process whose executable matches
# $2 (a stale pidfile's PID may have been reused by something else).
live_pid() {
    local pidfile=$1 exe=$2 pid
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] && alive "$pid" || return 1
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"$exe"* ]] || return 1
    echo "$pid"
}

daemon_pid() { live_pid "$PIDFILE" "$(basename "$LIBVIRTD")"; }
reaper_pid() { live_pid "$DIR/reaper.pid" python; }

# Waits up to $2 seconds for PID $1 to exit.
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
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
    for pidfile in "$DIR"/run/libvirt/qemu/*.pid; do
        [[ -e $pidfile ]] || continue
        if pid=$(live_pid "$pidfile" qemu-system); then
            terminate "$pid" "qemu $(basename "$pidfile" .pid)"
        fi
    done
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
# become libvirtd.
in_namespace() {
    local d cpu
    for d in "${BOUND_DIRS[@]}"; do
        mount --bind "$DIR/$d" "/$d"
    done
    # The QEMU capability cache is keyed on the host's CPUID, which includes
    # the APIC ID of whichever CPU libvirtd happens to run on: unpinned, about
    # every other start throws the cache away and re-probes QEMU.
    # Guests are not affected: libvirt gives QEMU all online CPUs.
    cpu=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
    cpu=${cpu%%[-,]*}
    exec taskset -c "$cpu" "$LIBVIRTD" -f "$DIR/etc/libvirt/libvirtd.conf" -p "$PIDFILE"
}

answers() { timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; }

startup_failed() {
    cat "$DIR/libvirtd.stderr" >&2 2>/dev/null || true
    tail -n 20 "$DIR/var/log/libvirt/libvirtd.log" >&2 2>/dev/null || true
    stop >/dev/null 2>&1 || true
    die "$@"
}

start() {
    local pid d deadline python reaper
    if pid=$(daemon_pid); then
        die "already running (pid $pid) in $DIR"
    fi
    python=/usr/bin/python3
    [[ -x $python ]] || python=$(command -v python3) || die "python3 is needed"
    # Left over from a daemon that died without 'stop'.
    kill_guests
    rm -rf "$DIR/run/libvirt" "$SOCK_DIR"
    mkdir -p "$DIR"
    for d in "${BOUND_DIRS[@]}"; do
        mkdir -p "$DIR/$d"
        [[ -d /$d ]] || mkdir -p "/$d"
    done
    mkdir -m 0700 "$SOCK_DIR"
    write_config

    "$python" "$REAPER" unshare -m --propagation private "$SELF" __in-namespace "$DIR" \
        </dev/null >"$DIR/libvirtd.stderr" 2>&1 &
    reaper=$!
    echo "$reaper" >"$DIR/reaper.pid"

    deadline=$((SECONDS + START_TIMEOUT))
    until pid=$(daemon_pid) && answers; do
        alive "$reaper" || startup_failed "libvirtd exited during startup"
        ((SECONDS < deadline)) ||
            startup_failed "libvirtd did not answer on $URI within ${START_TIMEOUT}s"
        sleep 0.05
    done
}

stop() {
    local pid
    # Daemon first, so that it does not react to its guests going away.
    if pid=$(daemon_pid); then
        terminate "$pid" libvirtd
    fi
    kill_guests
    if pid=$(reaper_pid); then
        if ! wait_gone "$pid" 5; then
            echo "libvirtd-env: processes left from $DIR:" >&2
            ps -o pid=,args= --ppid "$pid" >&2 || true
            return 1
        fi
    fi
    rm -f "$PIDFILE" "$DIR/reaper.pid"
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
DIR=$(realpath -m "${2:-${SNAPDRIVER_LIBVIRT_DIR:-$REPO/.run/libvirt}}")
[[ $DIR != / ]] || die "DIR must not be /: its run/libvirt would be the host's"
[[ $DIR != *[[:space:]?\&#%]* ]] || die "DIR must not contain spaces or URI characters: $DIR"
PIDFILE=$DIR/libvirtd.pid
SOCK_DIR=$DIR/sock
# sun_path holds 108 bytes; the admin socket has the longest name. A deep
# checkout gets its sockets under /tmp instead, in a directory named after
# DIR so that each DIR still has its own daemon.
if ((${#SOCK_DIR} + 19 >= 108)); then
    SOCK_DIR=/tmp/snapdriver-libvirt-$(printf %s "$DIR" | md5sum | cut -c1-16)
fi
URI="qemu:///system?socket=$SOCK_DIR/libvirt-sock"

case $cmd in
    start) start ;;
    stop) stop ;;
    status) status ;;
    uri) echo "$URI" ;;
    __in-namespace) in_namespace ;;
    *) usage ;;
esac
