#!/bin/bash
# Regenerate the sample configuration and policy files from the code.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}
"$venv/bin/oslo-config-generator" \
    --config-file etc/snapdriver/snapdriver-config-generator.conf
"$venv/bin/oslopolicy-sample-generator" \
    --config-file etc/snapdriver/snapdriver-policy-generator.conf
