#!/bin/bash
# Run snapdriver's benchmarks, each side by side with its baseline, on local
# TCG guests, and print the tables (also written to .run/bench/results.md).
#
#   tools/run-benchmarks.sh [--quick] [--profile] [benchmark.py options]
#
# Installs what it needs (libvirt, QEMU, wrk from Debian; the venv with
# --with-libvirt --with-tests; py-spy from PyPI with --profile), starts a
# private libvirtd whose state lives under .run/bench/libvirt (separate from
# the tests' .run/libvirt, so both can run at once), runs
# tools/benchmark.py (with a RabbitMQ broker for the region benchmark: see
# tools/with-rabbitmq.sh), and stops everything it started. A full run takes
# about 5 minutes on 2 CPUs, --quick under 2 (more while other work runs).
# Other options go to tools/benchmark.py (--only, --iterations, --merge-mb,
# --no-whatif, --out); see doc/benchmarks.md. Sections for --only: create,
# delete, merge, api, scaling, components, region, memory; e.g.
#
#   tools/run-benchmarks.sh --only memory   # snapdriver-api's RSS after
#                                           # 10,000 and 20,000 operations
#                                           # (fake driver, no libvirt used)
#
# The run ends with the table "Targets (performance round two)", built from
# the sections that ran ("not run" for the others). The snapdriver measured
# is this checkout's (PYTHONPATH), whichever one the venv's editable install
# points at: SNAPDRIVER_VENV=/work/main/.venv tools/run-benchmarks.sh run
# from another checkout measures that checkout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}

profile=false
for arg in "$@"; do
    if [[ $arg == --profile ]]; then profile=true; fi
done

tools/install-system-deps.sh
if ! command -v wrk >/dev/null; then
    if ((EUID != 0)); then
        echo "run-benchmarks: need root to install wrk" >&2
        exit 1
    fi
    echo "run-benchmarks: installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing or old on a fresh machine.
    apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1 || {
        apt-get update -q >/dev/null &&
            apt-get install -y -q --no-install-recommends wrk >/dev/null
    }
fi
if [[ -z ${SNAPDRIVER_VENV:-} ]]; then
    tools/setup-venv.sh --with-libvirt --with-tests
fi
# A venv given by SNAPDRIVER_VENV is used as it is: setting it up from
# here would point its editable install at this checkout.
if $profile && [[ ! -x $venv/bin/py-spy ]]; then
    "$venv/bin/pip" install -q py-spy
fi

export SNAPDRIVER_LIBVIRT_DIR=${SNAPDRIVER_BENCH_LIBVIRT_DIR:-$top/.run/bench/libvirt}
exec tools/with-libvirtd.sh tools/with-rabbitmq.sh \
    "$venv/bin/python" tools/benchmark.py "$@"
