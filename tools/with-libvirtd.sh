#!/bin/bash
# Run a command against a private libvirtd (see libvirtd-env.sh), which is
# stopped afterwards whatever happens. Exits with the command's status.
#
#   tools/with-libvirtd.sh CMD [ARGS...]
set -euo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
env_sh=$(dirname "$(realpath "${BASH_SOURCE[0]}")")/libvirtd-env.sh

"$env_sh" start
trap '"$env_sh" stop' EXIT
# Without this, a signal would end the script without running the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

SNAPDRIVER_TEST_LIBVIRT_URI=$("$env_sh" uri)
export SNAPDRIVER_TEST_LIBVIRT_URI

status=0
"$@" || status=$?
exit "$status"
