#!/bin/bash
# Build the HTML documentation into doc/build/html, with warnings as errors:
# the Markdown documents of doc/ (myst-parser), the configuration and policy
# references and the sample files (oslo.config's and oslo.policy's Sphinx
# extensions; doc/conf.py). tools/run-tests.sh runs it, so that the
# documentation cannot rot.
#   tools/build-docs.sh [extra sphinx-build arguments]
# Uses the Python of $SNAPDRIVER_VENV (default: <repo>/.venv), which
# tools/setup-venv.sh --with-tests provides with Sphinx.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv=${SNAPDRIVER_VENV:-$top/.venv}

if ! "$venv/bin/python" -c 'import sphinx, myst_parser' 2>/dev/null; then
    echo "build-docs: Sphinx or myst-parser is missing from $venv" \
         "(tools/setup-venv.sh --with-tests)" >&2
    exit 1
fi
# The references are generated from the code of this tree, whatever
# snapdriver the venv has installed.
export PYTHONPATH=$top${PYTHONPATH:+:$PYTHONPATH}
# -E: a fresh environment every time. The references depend on the code,
# which Sphinx does not track, and an incremental build would not repeat
# the warnings of documents it does not read again.
exec "$venv/bin/python" -m sphinx -E -W --keep-going -b html "$@" \
    doc doc/build/html
