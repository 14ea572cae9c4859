#!/bin/bash
# Create (or refresh) the project's virtualenv and install snapdriver into it.
#   tools/setup-venv.sh [--with-libvirt] [--with-tests]
# The venv lives in $SNAPDRIVER_VENV (default: <repo>/.venv). Re-running is
# cheap: pip skips what is already satisfied.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${SNAPDRIVER_VENV:-$top/.venv}
extras=()
for arg in "$@"; do
    case $arg in
        --with-libvirt) extras+=(-r "$top/libvirt-requirements.txt") ;;
        --with-tests) extras+=(-r "$top/test-requirements.txt") ;;
        *) echo "setup-venv: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/pip" install -q -r "$top/requirements.txt" "${extras[@]}" 2>&1 \
    | grep -v '^WARNING: Location' >&2 || true
"$venv/bin/pip" install -q --no-deps -e "$top" 2>&1 \
    | grep -v '^WARNING: Location' >&2 || true
"$venv/bin/python" -c 'import snapdriver.service' \
    || { echo "setup-venv: snapdriver did not install" >&2; exit 1; }
