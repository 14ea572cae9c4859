#!/bin/bash
# Demonstrate one full create + delete cycle of assisted snapshots against a
# local TCG guest: installs libvirt/QEMU (Debian) and the venv, starts a
# private libvirtd, runs tools/demo_libvirt.py, stops everything.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}
tools/install-system-deps.sh
tools/setup-venv.sh --with-libvirt --with-tests
exec tools/with-libvirtd.sh "$venv/bin/python" tools/demo_libvirt.py
