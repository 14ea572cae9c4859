#!/bin/bash
# Create (or check) a separate virtualenv holding Cinder, for the interop
# tests that run a real cinder-api and Cinder's own compute client and
# remotefs driver code against snapdriver (test_cinder_loop).
#   tools/setup-cinder-venv.sh            # prints the venv path on stdout
# The venv lives in $SNAPDRIVER_CINDER_VENV (default: <repo>/.venv-cinder);
# Cinder never goes into snapdriver's own venv: its pins are not ours.
# $SNAPDRIVER_CINDER_SPEC picks the version (default below, the one the tests
# were written against). Re-running is fast: when the venv already has that
# Cinder and it imports, nothing is downloaded.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${SNAPDRIVER_CINDER_VENV:-$top/.venv-cinder}
spec=${SNAPDRIVER_CINDER_SPEC:-cinder==29.0.0}
python=${SNAPDRIVER_CINDER_PYTHON:-python3}
stamp=$venv/.snapdriver-cinder-spec

# What the tests use from the venv: the two commands and these modules.
check() {
    [[ -x $venv/bin/cinder-api && -x $venv/bin/cinder-manage ]] &&
        "$venv/bin/python" - <<'EOF' >/dev/null 2>&1
import cinder.common.config
import cinder.compute.nova
import cinder.db.api
import cinder.volume.drivers.remotefs
EOF
}

if [[ -f $stamp && $(cat "$stamp") == "$spec" ]] && check; then
    echo "$venv"
    exit 0
fi

if [[ ! -x $venv/bin/python ]]; then
    if ! command -v "$python" >/dev/null; then
        echo "setup-cinder-venv: no $python (set SNAPDRIVER_CINDER_PYTHON)" >&2
        exit 1
    fi
    if ! "$python" -c 'import ensurepip' 2>/dev/null; then
        # Debian ships venv's pip bootstrap separately.
        if ((EUID == 0)) && command -v apt-get >/dev/null; then
            echo "setup-cinder-venv: installing python3-venv" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -q >/dev/null
            apt-get install -y -q --no-install-recommends python3-venv \
                >/dev/null
        else
            echo "setup-cinder-venv: $python has no ensurepip; install" \
                 "python3-venv (as root: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    "$python" -m venv "$venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "setup-cinder-venv: installing $spec into $venv (about a minute)" >&2
# pip's output goes to the log, shown only if it fails.
if ! "$venv/bin/pip" install -q "$spec" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-cinder-venv: pip install $spec failed" >&2
    exit 1
fi
if ! check; then
    echo "setup-cinder-venv: $spec installed but cinder-api, cinder-manage" \
         "or Cinder's modules are missing from $venv" >&2
    exit 1
fi
echo "$spec" >"$stamp"
echo "$venv"
