#!/bin/bash
# Run a command with $SNAPDRIVER_TEST_TRANSPORT_URL naming a RabbitMQ broker
# for the tests of the API tier and the agents:
#   - the URL already in $SNAPDRIVER_TEST_TRANSPORT_URL, if set;
#   - else a broker answering on 127.0.0.1:5672 as guest/guest;
#   - else a private node started here (Debian's rabbitmq-server, installed
#     if missing; state under .run/rabbitmq) and stopped afterwards.
# With none of these (not root, no package), the tests that need a broker
# are skipped, saying so. Exits with the command's status.
#
#   tools/with-rabbitmq.sh CMD [ARGS...]
set -euo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
python=${SNAPDRIVER_VENV:-$top/.venv}/bin/python
broker=(env PYTHONPATH="$top" "$python" -m snapdriver.tests.functional.broker)
state=$top/.run/rabbitmq

started=false
if url=$("${broker[@]}" find); then
    echo "with-rabbitmq: using the broker at ${url##*@}" >&2
else
    if [[ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        if ((EUID == 0)); then
            echo "with-rabbitmq: installing rabbitmq-server" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q --no-install-recommends rabbitmq-server \
                >/dev/null 2>&1 || {
                apt-get update -q >/dev/null &&
                    apt-get install -y -q --no-install-recommends \
                        rabbitmq-server >/dev/null
            } || true
        fi
    fi
    url=""
    if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        echo "with-rabbitmq: no broker on 127.0.0.1:5672; starting a private node" >&2
        if url=$("${broker[@]}" start "$state"); then
            started=true
        else
            echo "with-rabbitmq: the private node did not start" >&2
            url=""
        fi
    fi
    if [[ -z $url ]]; then
        echo "with-rabbitmq: NO BROKER: the tests of the API tier and the agents will be skipped" >&2
    fi
fi

cleanup() {
    if $started; then
        "${broker[@]}" stop "$state" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export SNAPDRIVER_TEST_TRANSPORT_URL=$url
status=0
"$@" || status=$?
exit "$status"
