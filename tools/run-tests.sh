#!/bin/bash
# Set up and run snapdriver's whole test suite on a fresh Debian 12 machine:
# system packages (libvirt, QEMU), the virtualenv, a private libvirtd for the
# functional tests and a RabbitMQ broker for the API tier's (the machine's,
# or a private node; see tools/with-rabbitmq.sh; stopped afterwards), then
# stestr. Ends with the line
# "N passed, N failed, N skipped". Extra arguments go to `stestr run` as a
# filter, e.g. tools/run-tests.sh test_chain
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}

tools/install-system-deps.sh
tools/setup-venv.sh --with-libvirt --with-tests
# Cinder in a venv of its own, for the interop tests (test_cinder_loop).
cinder_venv=$(tools/setup-cinder-venv.sh)
export SNAPDRIVER_TEST_CINDER_VENV=$cinder_venv

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
tools/with-libvirtd.sh tools/with-rabbitmq.sh \
    "$venv/bin/python" -m stestr run --color "$@" 2>&1 \
    | tee "$log"
status=${PIPESTATUS[0]}
set -e

count() {
    local n
    n=$(grep -E "^ - $1: [0-9]+" "$log" | tail -n 1 | grep -oE '[0-9]+$')
    echo "${n:-0}"
}
passed=$(count Passed)
failed=$(count Failed)
skipped=$(count Skipped)
if ((status != 0 && failed == 0)); then
    # stestr failed without counting a failed test (import error, crash):
    # count it as one, so the summary never reads as a clean run.
    failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
