#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Cinder's side of the interop tests, run by the CINDER venv's python.

Not imported by snapdriver or its tests: :mod:`cinder_env` runs it as
``<cinder venv>/bin/python cinder_side.py REQUEST``, REQUEST being JSON::

    {"config_files": ["cinder.conf", "nova-client.conf"],
     "command": "remotefs_create", "args": {...}}

and reads one JSON answer from stdout: ``{"ok": true, "result": ...}``, or
``{"ok": false, "error": {"type": ..., "module": ..., "message": ...}}``
when Cinder's code raised (that is a result, not a crash: the tests check
that Cinder fails as it should). Cinder's log goes to stderr.

``cinder_side.py --serve`` serves many such requests, one JSON line each
on stdin, one answer line each on stdout, so that Cinder is imported only
once.

Everything here is Cinder's own code: ``cinder.db.api`` to seed and read
its database, ``cinder.compute.nova.API`` (the compute client Cinder's
volume drivers use) and the remotefs driver's ``_create_snapshot_online``
and ``_nova_assisted_vol_snap_delete``, called on a stand-in object that
carries only what those methods touch. They send the request to snapdriver
(configured as ``[nova]``) and then poll Cinder's database until the status
callback sets progress ``90%``, exactly as in production.
"""

import json
import sys
import time
import traceback

# Cinder's log handlers must not write to stdout, which carries the answer.
_ANSWER = sys.stdout
sys.stdout = sys.stderr

import warnings  # noqa: E402

warnings.simplefilter('ignore', DeprecationWarning)

from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from cinder.common import config  # noqa: E402,F401  (registers options)
from cinder import compute  # noqa: E402
from cinder import context as cinder_context  # noqa: E402
from cinder.db import api as db  # noqa: E402
from cinder import objects  # noqa: E402

objects.register_all()

from cinder.volume.drivers import remotefs  # noqa: E402

CONF = cfg.CONF
LOG = logging.getLogger('cinder_side')


class RemoteFSStandIn:
    """The part of a remotefs driver (NFS, Quobyte, VZStorage) that talks
    to the compute service: Cinder's own methods, unchanged.

    ``_do_create_snapshot`` (qemu-img create of the overlay on the share)
    is recorded instead of run: the fake driver on snapdriver's side lists
    that overlay in its inventory.
    """

    _create_snapshot_online = (
        remotefs.RemoteFSSnapDriverBase._create_snapshot_online)
    _nova_assisted_vol_snap_delete = (
        remotefs.RemoteFSSnapDriverBase._nova_assisted_vol_snap_delete)

    def __init__(self):
        self._nova = compute.API()
        self.overlays_created = []

    def _do_create_snapshot(self, snapshot, backing_filename, new_snap_path):
        self.overlays_created.append(
            {'backing_filename': backing_filename,
             'new_snap_path': new_snap_path})


def _context(args):
    """A context like the one Cinder's volume manager holds: the snapshot
    owner's, with admin rights (noauth gives every caller admin)."""
    if args.get('project_id'):
        return cinder_context.RequestContext(
            user_id=args.get('user_id') or 'cinder',
            project_id=args['project_id'], is_admin=True)
    return cinder_context.get_admin_context()


def _snapshot_state(ctx, snapshot_id):
    s = db.snapshot_get(ctx, snapshot_id)
    return {'status': s['status'], 'progress': s['progress'],
            'updated_at': s['updated_at'].isoformat()
            if s['updated_at'] else None}


def seed(args):
    """An in-use volume attached to ``instance_uuid``, and its snapshots
    as Cinder's API leaves them before the driver runs: ``creating``
    (progress 0%), ``deleting``, or ``available`` (100%).

    ``attachments`` (optional) replaces the one attachment (host
    ``compute-1``): a list of ``{"host_name", "instance_uuid"}``, each
    attached as nova-compute attaches (the connector's host, None for a
    legacy attachment without one); empty leaves the volume detached.
    """
    ctx = cinder_context.get_admin_context()
    attachments = args.get('attachments')
    if attachments is None:
        attachments = [{'host_name': 'compute-1',
                        'instance_uuid': args['instance_uuid']}]
    volume_type = db.volume_type_get_by_name(ctx, '__DEFAULT__')
    db.volume_create(ctx, {
        'id': args['volume_id'],
        'user_id': args['user_id'],
        'project_id': args['project_id'],
        'size': 1,
        'host': 'cinder-host@nfs#nfs',
        'availability_zone': 'nova',
        'status': 'available',
        'attach_status': 'detached',
        'display_name': 'snapdriver-interop',
        'volume_type_id': volume_type['id'],
        'provider_location': '127.0.0.1:/srv/nfs',
        'multiattach': len({a['instance_uuid'] for a in attachments}) > 1,
    })
    for one in attachments:
        attachment = db.volume_attach(ctx, {
            'volume_id': args['volume_id'],
            'attach_status': 'attaching',
            'instance_uuid': one['instance_uuid'],
        })
        db.volume_attached(ctx, attachment['id'], one['instance_uuid'],
                           one['host_name'], '/dev/vdb')
    volume = db.volume_get(ctx, args['volume_id'])
    snapshots = {}
    for snapshot in args.get('snapshots', []):
        db.snapshot_create(ctx, {
            'id': snapshot['id'],
            'volume_id': volume['id'],
            'user_id': volume['user_id'],
            'project_id': volume['project_id'],
            'status': snapshot['status'],
            'progress': snapshot['progress'],
            'volume_size': volume['size'],
            'volume_type_id': volume['volume_type_id'],
            'display_name': 'snap-%s' % snapshot['id'][:8],
        })
        snapshots[snapshot['id']] = _snapshot_state(ctx, snapshot['id'])
    return {'volume': {'status': volume['status'],
                       'attach_status': volume['attach_status']},
            'snapshots': snapshots}


def update_snapshot(args):
    """Move a snapshot on as Cinder's own services would (the volume
    manager marks a created snapshot ``available``, 100%; the API marks
    one asked to be deleted ``deleting``)."""
    ctx = cinder_context.get_admin_context()
    db.snapshot_update(ctx, args['snapshot_id'],
                       {'status': args['status'],
                        'progress': args['progress']})
    return _snapshot_state(ctx, args['snapshot_id'])


def move_attachments(args):
    """Every attachment of a volume now names ``host_name``: what a live
    migration leaves once it is over (nova-compute updates the connector
    of the attachment to the destination host)."""
    ctx = cinder_context.get_admin_context()
    moved = 0
    for attachment in db.volume_attachment_get_all_by_volume_id(
            ctx, args['volume_id']):
        db.volume_attachment_update(ctx, attachment['id'],
                                    {'attached_host': args['host_name']})
        moved += 1
    return {'moved': moved}


def get_snapshot(args):
    return _snapshot_state(cinder_context.get_admin_context(),
                           args['snapshot_id'])


def wait_snapshot(args):
    """Poll until the snapshot has ``status`` and ``progress``.

    :returns: the last state seen, ``matched`` and the seconds waited.
    """
    ctx = cinder_context.get_admin_context()
    start = time.monotonic()
    deadline = start + args.get('timeout', 30)
    while True:
        state = _snapshot_state(ctx, args['snapshot_id'])
        matched = (state['status'] == args['status']
                   and state['progress'] == args['progress'])
        if matched or time.monotonic() > deadline:
            state.update(matched=matched,
                         waited=round(time.monotonic() - start, 3),
                         seen_at=time.time())
            return state
        time.sleep(args.get('interval', 0.1))


def watch_snapshot(args):
    """Read the snapshot's status and progress every ``interval`` seconds
    for ``seconds`` seconds: what ``openstack volume snapshot show`` would
    have shown meanwhile.

    :returns: every change seen, ``[{"status", "progress", "at"}]`` (epoch
        seconds), the first state included.
    """
    ctx = cinder_context.get_admin_context()
    deadline = time.monotonic() + args['seconds']
    seen = []
    while time.monotonic() < deadline:
        state = _snapshot_state(ctx, args['snapshot_id'])
        shown = (state['status'], state['progress'])
        if not seen or (seen[-1]['status'], seen[-1]['progress']) != shown:
            seen.append({'status': shown[0], 'progress': shown[1],
                         'at': time.time()})
        time.sleep(args.get('interval', 0.05))
    return seen


def nova_create(args):
    """cinder.compute.nova.API().create_volume_snapshot, nothing else.

    :returns: the request id Cinder sent along (X-OpenStack-Request-ID).
    """
    ctx = _context(args)
    compute.API().create_volume_snapshot(
        ctx, args['volume_id'], args['create_info'])
    return {'request_id': ctx.global_id}


def nova_delete(args):
    ctx = _context(args)
    compute.API().delete_volume_snapshot(
        ctx, args['snapshot_id'], args['delete_info'])
    return {'request_id': ctx.global_id}


def _timed(call, driver, ctx, snapshot_id):
    """Run a remotefs method; the result, or the exception it raised,
    carries the seconds it took, the request id sent to the compute API
    and the snapshot as Cinder's DB has it afterwards."""
    start = time.monotonic()
    try:
        call()
    except Exception as e:
        e.snapdriver_test_details = {
            'seconds': round(time.monotonic() - start, 3),
            'request_id': ctx.global_id,
            'snapshot': _snapshot_state(ctx, snapshot_id)}
        raise
    return {'seconds': round(time.monotonic() - start, 3),
            'request_id': ctx.global_id,
            'overlays_created': driver.overlays_created,
            'snapshot': _snapshot_state(ctx, snapshot_id)}


def remotefs_create(args):
    """RemoteFSSnapDriverBase._create_snapshot_online: POST to the compute
    API, then poll the DB until ``creating`` + ``90%`` (or fail)."""
    ctx = _context(args)
    snapshot = objects.Snapshot.get_by_id(ctx, args['snapshot_id'])
    driver = RemoteFSStandIn()
    return _timed(lambda: driver._create_snapshot_online(
        snapshot, args['backing_filename'], args['new_snap_path']),
        driver, ctx, args['snapshot_id'])


def remotefs_delete(args):
    """RemoteFSSnapDriverBase._nova_assisted_vol_snap_delete: DELETE on
    the compute API, then poll the DB until ``deleting`` + ``90%``."""
    ctx = _context(args)
    snapshot = objects.Snapshot.get_by_id(ctx, args['snapshot_id'])
    driver = RemoteFSStandIn()
    return _timed(lambda: driver._nova_assisted_vol_snap_delete(
        ctx, snapshot, args['delete_info']),
        driver, ctx, args['snapshot_id'])


COMMANDS = {f.__name__: f for f in (
    seed, update_snapshot, move_attachments, get_snapshot, wait_snapshot,
    watch_snapshot, nova_create, nova_delete, remotefs_create,
    remotefs_delete)}


def run(request):
    """One command: ``{"command": ..., "args": {...}}`` -> the answer."""
    LOG.info("=== %s %s", request['command'],
             json.dumps(request.get('args', {})))
    command = COMMANDS[request['command']]
    try:
        return {'ok': True, 'result': command(request.get('args', {}))}
    except Exception as e:
        LOG.info("%s raised:\n%s", request['command'],
                 traceback.format_exc())
        answer = {'ok': False,
                  'error': {'type': type(e).__name__,
                            'module': type(e).__module__,
                            'message': str(e)}}
        answer.update(getattr(e, 'snapdriver_test_details', {}))
        return answer


def _answer(answer):
    _ANSWER.write(json.dumps(answer) + '\n')
    _ANSWER.flush()


_configured = []


def _configure(config_files):
    """Parse Cinder's configuration (again, when the files differ from
    the last request's: each test's snapdriver is another [nova])."""
    if _configured == [config_files]:
        return
    argv = []
    for path in config_files:
        argv += ['--config-file', path]
    CONF(argv, project='cinder')
    if not _configured:
        logging.setup(CONF, 'cinder')
    _configured[:] = [config_files]


def main():
    if sys.argv[1] != '--serve':
        request = json.loads(sys.argv[1])
        _configure(request['config_files'])
        _answer(run(request))
        return
    # Many requests, one JSON line each on stdin, answers on stdout:
    # Cinder is imported once, not once per command.
    for line in sys.stdin:
        if line.strip():
            request = json.loads(line)
            _configure(request['config_files'])
            _answer(run(request))


if __name__ == '__main__':
    main()
