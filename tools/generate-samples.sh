#!/bin/bash
# Regenerate the sample configuration and policy files, and the reference
# documents, from the code.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}
"$venv/bin/oslo-config-generator" \
    --config-file etc/snapdriver/snapdriver-config-generator.conf
"$venv/bin/oslopolicy-sample-generator" \
    --config-file etc/snapdriver/snapdriver-policy-generator.conf
# The reference documents generated from the same code: doc/configuration.md,
# doc/policy.md and doc/support-matrix.md.
"$venv/bin/python" tools/generate-config-doc.py
