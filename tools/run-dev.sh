#!/bin/bash
# DEVELOPMENT PROFILE: set up and start snapdriver with the fake driver, the
# demo inventory (etc/snapdriver/demo-inventory.json) and NO AUTHENTICATION,
# on 127.0.0.1 (port $SNAPDRIVER_PORT, default 8774). Ctrl-C stops it.
# Never expose this profile beyond loopback.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${SNAPDRIVER_VENV:-$top/.venv}
port=${SNAPDRIVER_PORT:-8774}
run=$top/.run/dev
mkdir -p "$run"

"$top/tools/setup-venv.sh"

# The fake host lives in memory: start its journal afresh with it, or a
# repeated snapshot id would be answered from a journal the host no longer
# matches.
rm -f "$run"/snapdriver.sqlite*

cat > "$run/snapdriver.conf" <<CONF
# Written by tools/run-dev.sh: the development profile.
[DEFAULT]
driver = fake
auth_strategy = noauth
status_reporter = log

[database]
connection = sqlite:///$run/snapdriver.sqlite

[api]
bind_host = 127.0.0.1
bind_port = $port

[fake]
inventory_file = $top/etc/snapdriver/demo-inventory.json
assume_overlays = true
CONF

vol=5f0c2ad4-1b7e-4c8e-9a0e-7d7f0c5b9a11
cat <<MSG

snapdriver DEVELOPMENT profile: fake driver, demo inventory, noauth.
Config: $run/snapdriver.conf    API: http://127.0.0.1:$port/v2.1

Try, from another terminal:

  curl -s -X POST http://127.0.0.1:$port/v2.1/os-assisted-volume-snapshots \\
    -H 'X-Auth-Token: admin:demo' -H 'Content-Type: application/json' \\
    -d '{"snapshot": {"volume_id": "$vol", "create_info": {"snapshot_id": "snap-1", "type": "qcow2", "new_file": "volume-$vol.snap-1"}}}'

  curl -s http://127.0.0.1:$port/v2.1/os-assisted-volume-snapshots/snap-1 -H 'X-Auth-Token: admin:demo'

  curl -s -g -X DELETE -H 'X-Auth-Token: admin:demo' \\
    'http://127.0.0.1:$port/v2.1/os-assisted-volume-snapshots/snap-1?delete_info={"volume_id":"$vol","type":"qcow2","file_to_merge":null,"merge_target_file":null}'

MSG
# A new journal gets its schema, as an operator's first start does.
"$venv/bin/snapdriver-manage" --config-file "$run/snapdriver.conf" db sync
exec "$venv/bin/snapdriver-api" --config-file "$run/snapdriver.conf"
