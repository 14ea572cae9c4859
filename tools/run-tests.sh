#!/bin/bash
# Set up and run snapdriver's whole test suite on a fresh Debian 12 machine:
# system packages (libvirt, QEMU), the virtualenv, a private libvirtd for the
# functional tests and a RabbitMQ broker for the API tier's (the machine's,
# or a private node; see tools/with-rabbitmq.sh; stopped afterwards), then
# stestr. Before the tests it builds the documentation (tools/build-docs.sh,
# warnings as errors); a failed build counts as one failure. Ends with the
# line "N passed, N failed, N skipped". Extra arguments go to `stestr run`
# as a filter, e.g. tools/run-tests.sh test_chain
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
docs_log=$(mktemp)
trap 'rm -f "$log" "$docs_log"' EXIT

# The documentation, with warnings as errors: a reference that no longer
# builds fails the run. Its output goes to a log, shown when it fails.
docs_failed=0
echo "run-tests: building the documentation (tools/build-docs.sh)"
start=$SECONDS
if SNAPDRIVER_VENV=$venv tools/build-docs.sh -q >"$docs_log" 2>&1; then
    echo "run-tests: documentation built in $((SECONDS - start)) s" \
         "(doc/build/html)"
else
    docs_failed=1
    echo "run-tests: the documentation does not build:"
    grep -E 'WARNING|ERROR|Error|error:' "$docs_log" | tail -n 40 \
        || tail -n 40 "$docs_log"
fi

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
if ((docs_failed)); then
    echo "run-tests: the documentation build failed (see above," \
         "or run tools/build-docs.sh); counted as one failure"
    failed=$((failed + 1))
    ((status != 0)) || status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
