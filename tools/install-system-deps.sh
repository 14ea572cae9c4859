#!/bin/bash
# Install what snapdriver's functional tests need on a fresh Debian 12 host:
# libvirtd with the QEMU driver, QEMU (TCG is enough), qemu-img/qemu-io, and
# the headers libvirt-python compiles against. Run as root; idempotent.
set -euo pipefail

PACKAGES=(python3-venv libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils strace
          libvirt-clients libvirt-dev pkg-config)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if ((EUID != 0)); then
        echo "install-system-deps: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # apt and debconf chatter goes to the log, shown only if something fails.
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
            >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-system-deps: apt-get failed" >&2
        exit 1
    fi
fi

# libvirtd looks this user up before reading qemu.conf and refuses to load the
# QEMU driver without it; the Debian package that normally creates it drags in
# systemd pieces, so create it ourselves.
if ! getent group libvirt-qemu >/dev/null; then
    groupadd -r libvirt-qemu
fi
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd -r -g libvirt-qemu -M -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
fi
