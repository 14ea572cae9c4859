#!/bin/bash
# Install what snapdriver's functional tests need on a fresh Debian 12 host:
# libvirtd with the QEMU driver, QEMU (TCG is enough), qemu-img/qemu-io, and
# the headers libvirt-python compiles against, as bindep.txt lists them. Run as
# root; idempotent.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

# The packages come from bindep.txt, read here without the bindep tool: a line
# is a package name and optional selectors in brackets. platform:<name> and
# profile words are both "any positive one must match, no negated one may";
# grouped selectors (parentheses) and version constraints are not supported.
# The platforms are dpkg and the distribution's ID; the profile is test.
bindep_packages() {
    local distro
    distro=$(. /etc/os-release 2>/dev/null && echo "${ID:-}")
    awk -v platforms="dpkg $distro" -v profiles="test" '
        BEGIN {
            n = split(platforms, list, " ")
            for (i = 1; i <= n; i++) platform[list[i]] = 1
            n = split(profiles, list, " ")
            for (i = 1; i <= n; i++) profile[list[i]] = 1
        }
        { sub(/#.*/, "") }
        NF == 0 { next }
        {
            selectors = ""
            if (match($0, /\[[^]]*\]/))
                selectors = substr($0, RSTART + 1, RLENGTH - 2)
            if (selectors ~ /[()]/ || $0 ~ /[<>=]/) {
                printf "bindep.txt:%d: not understood: %s\n", NR, $0 > "/dev/stderr"
                failed = 1
                exit 1
            }
            excluded = 0; want_platform = 0; platform_ok = 0
            want_profile = 0; profile_ok = 0
            n = split(selectors, words, " ")
            for (i = 1; i <= n; i++) {
                word = words[i]
                negated = sub(/^!/, "", word)
                if (sub(/^platform:/, "", word)) {
                    if (negated) { if (word in platform) excluded = 1 }
                    else { want_platform = 1; if (word in platform) platform_ok = 1 }
                } else {
                    if (negated) { if (word in profile) excluded = 1 }
                    else { want_profile = 1; if (word in profile) profile_ok = 1 }
                }
            }
            if (excluded || (want_platform && !platform_ok) || (want_profile && !profile_ok))
                next
            print $1
        }
        END { if (failed) exit 1 }' "$top/bindep.txt"
}

packages=$(bindep_packages)
mapfile -t PACKAGES <<<"$packages"
if [[ -z $packages ]]; then
    echo "install-system-deps: no packages for this platform in bindep.txt" >&2
    exit 1
fi

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
