#!/bin/bash
# Regenerate the sample configuration and policy files, and the support
# matrix, from the code. The configuration and policy references are not
# files to regenerate: the documentation build (tools/build-docs.sh) makes
# them, with a copy of both samples, from the same generator configurations.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}
"$venv/bin/oslo-config-generator" \
    --config-file etc/snapdriver/snapdriver-config-generator.conf
"$venv/bin/oslopolicy-sample-generator" \
    --config-file etc/snapdriver/snapdriver-policy-generator.conf
# doc/support-matrix.md, from the drivers' capabilities (no Sphinx extension
# covers it).
"$venv/bin/python" tools/generate-config-doc.py
