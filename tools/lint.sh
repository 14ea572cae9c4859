#!/bin/bash
# The project's lint, as tox -e pep8 and CI run it: flake8 with hacking (the
# [flake8] section of tox.ini) on the Python code, then reno lint on the
# release notes.
#   tools/lint.sh
# Uses flake8 and reno from PATH (tox puts its env there), else from
# $SNAPDRIVER_VENV (default: <repo>/.venv).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}

tool() {
    if command -v "$1" >/dev/null; then
        command -v "$1"
    elif [[ -x $venv/bin/$1 ]]; then
        echo "$venv/bin/$1"
    else
        echo "lint: $1 is not installed (pip install -r test-requirements.txt)" >&2
        return 1
    fi
}

flake8=$(tool flake8)
reno=$(tool reno)
# Without hacking, flake8 would pass code that the project's checks refuse.
if ! "$flake8" --version | grep -q hacking; then
    echo "lint: $flake8 runs without hacking (pip install hacking)" >&2
    exit 1
fi

status=0
echo "lint: flake8" >&2
"$flake8" snapdriver tools examples releasenotes/source doc/conf.py setup.py || status=1
echo "lint: reno lint" >&2
# reno says which configuration and notes it reads; only problems matter.
if ! out=$("$reno" -q lint 2>&1); then
    printf '%s\n' "$out" >&2
    status=1
fi
exit $status
