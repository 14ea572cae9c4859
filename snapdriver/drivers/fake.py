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

"""The fake driver: an in-memory hypervisor host, for tests and demos.

A fake pretends to succeed. It keeps a model of guests, their disks and
each disk's qcow2 chain, loaded from ``[fake] inventory_file``, and changes
the chains exactly as a real hypervisor would. Validation is not the fake's
business: the chain rules of :mod:`snapdriver.chain` decide, as they do for
the libvirt driver, so a black-box client sees the same 400s and the same
resulting chains.

Inventory (JSON or YAML)::

    {"guests": [
        {"name": "vm1", "state": "running",
         "disks": [
            {"target": "vda", "serial": "<volume id>",
             "directory": "/mnt/share/abc",
             "chain": ["volume-1.snap2", "volume-1.snap1", "volume-1"],
             "files": {"volume-1.snap3": {"format": "qcow2",
                                          "backing": "volume-1.snap2",
                                          "backing_format": "qcow2"}},
             "fail": ["commit"]}]}]}

``chain`` lists the active image first (all qcow2). ``files`` (optional)
describes other files in the directory, such as overlays Cinder created
(``backing_format`` defaults to qcow2 when there is a backing file;
``data_file`` names an external data file); with
``[fake] assume_overlays`` an unlisted new_file is taken to be a proper
overlay. ``fail`` (optional) lists operations (create, pull, commit) that
fail when run, to exercise error reporting. ``size`` (optional, bytes,
default 1 GiB) is the disk's size, which a merge's simulated job goes
through over ``[fake] operation_delay`` seconds, so that GET, Cinder and
``snapdriver-manage operations watch`` see its progress. A disk with ``"type":
"network"`` has no directory and its overlays cannot be inspected, like a
netfs disk.
"""

import collections
import copy
import json
import os
import threading
import time

from oslo_log import log
import yaml

from snapdriver.conf import CONF
from snapdriver.drivers import kit

LOG = log.getLogger(__name__)

_GUEST_STATES = ('running', 'shutoff')
_DEFAULT_SIZE = 1 << 30


def _fail(reason):
    raise kit.DriverLoadError(driver='fake', reason=reason)


def load_inventory(path):
    """Read and check an inventory file.

    :returns: the list of guests.
    :raises: DriverLoadError naming the file and what is wrong in it.
    """
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8')
    except (OSError, UnicodeDecodeError) as e:
        _fail("cannot read inventory file %s: %s" % (path, e))
    try:
        data = (yaml.safe_load(text) if path.endswith(('.yaml', '.yml'))
                else json.loads(text))
    except (ValueError, yaml.YAMLError) as e:
        _fail("inventory file %s is not valid JSON/YAML: %s" % (path, e))
    return validate_inventory(data, path)


def validate_inventory(data, source='inventory'):
    if not isinstance(data, dict) or not isinstance(data.get('guests'), list):
        _fail("%s must be an object with a 'guests' list" % source)
    for guest in data['guests']:
        if not isinstance(guest, dict) or not guest.get('name'):
            _fail("%s: every guest needs a 'name'" % source)
        state = guest.setdefault('state', 'running')
        if state not in _GUEST_STATES:
            _fail("%s: guest %s has state %r; use one of %s"
                  % (source, guest['name'], state, ', '.join(_GUEST_STATES)))
        for disk in guest.setdefault('disks', []):
            if not isinstance(disk, dict) or not disk.get('target'):
                _fail("%s: every disk of guest %s needs a 'target'"
                      % (source, guest['name']))
            where = "disk %s of guest %s" % (disk['target'], guest['name'])
            if disk.get('serial') is None:
                continue
            names = disk.get('chain')
            if (not isinstance(names, list) or not names
                    or not all(isinstance(n, str) and n for n in names)):
                _fail("%s: %s needs a non-empty 'chain' of file names"
                      % (source, where))
            network = disk.setdefault('type', 'file') == 'network'
            if not network and not disk.get('directory'):
                _fail("%s: %s needs a 'directory'" % (source, where))
            disk.setdefault('files', {})
            disk.setdefault('fail', [])
            size = disk.setdefault('size', _DEFAULT_SIZE)
            if not isinstance(size, int) or isinstance(size, bool) \
                    or size <= 0:
                _fail("%s: %s has size %r; give a positive number of bytes"
                      % (source, where, size))
    return data['guests']


class FakeDriver(kit.BaseDriver):
    """In-memory guests whose chains change as a hypervisor's would."""

    def __init__(self):
        path = CONF.fake.inventory_file
        self._guests = load_inventory(path) if path else []
        self._lock = threading.Lock()
        self._index_disks()
        # The simulated job of the last merge of each volume:
        # volume id -> (snapshot id, started, seconds, size).
        self._jobs = {}
        LOG.info("Fake driver: %d guest(s) from %s",
                 len(self._guests), path or 'no inventory file')

    def capabilities(self):
        return kit.Capabilities(create=True, pull=True, commit=True,
                                offline_pull=True, offline_commit=True,
                                network_disks=True, quiesce=False)

    def guests(self):
        """A copy of the model, for tests and demos."""
        with self._lock:
            return copy.deepcopy(self._guests)

    def add_guest(self, guest):
        """Add a guest described as in the inventory (tests, demos)."""
        guest = validate_inventory({'guests': [copy.deepcopy(guest)]})[0]
        with self._lock:
            self._guests.append(guest)
            self._index_disks()

    def _index_disks(self):
        # serial -> [(guest, disk)]: a lookup does not walk every disk.
        self._by_serial = collections.defaultdict(list)
        for guest in self._guests:
            for disk in guest['disks']:
                if disk.get('serial'):
                    self._by_serial[disk['serial']].append((guest, disk))

    def add_file(self, volume_id, name, fmt='qcow2', backing=None, **header):
        """Put a file beside a volume's chain, as Cinder creates overlays.

        ``header`` may set ``backing_format`` and ``data_file``.
        """
        with self._lock:
            _, disk = self._find(volume_id)
            disk['files'][name] = dict(header, format=fmt, backing=backing)

    def attached_volumes(self):
        with self._lock:
            return sorted({disk['serial'] for guest in self._guests
                           for disk in guest['disks'] if disk.get('serial')})

    def _find(self, volume_id):
        return kit.the_one_disk(volume_id, (
            (disk['serial'], guest['name'], (guest, disk))
            for guest, disk in self._by_serial.get(volume_id, ())))

    def locate_disk(self, volume_id):
        with self._lock:
            guest, disk = self._find(volume_id)
            directory = disk.get('directory')
            entries = tuple(
                kit.ChainEntry(name=name, index=i,
                               path=(os.path.join(directory, name)
                                     if directory else name))
                for i, name in enumerate(disk['chain']))
            return kit.DiskLocation(
                volume_id=volume_id, guest=guest['name'],
                target=disk['target'], running=guest['state'] == 'running',
                chain=entries, source_type=disk['type'],
                directory=directory if disk['type'] == 'file' else None)

    def inspect_overlay(self, location, new_file):
        if location.source_type != 'file':
            return None
        with self._lock:
            _, model = self._find(location.volume_id)
            info = model['files'].get(new_file)
            if info is not None:
                backing = info.get('backing')
                return kit.OverlayInfo(
                    name=new_file, exists=True,
                    fmt=info.get('format', 'qcow2'), backing=backing,
                    backing_fmt=info.get('backing_format',
                                         'qcow2' if backing else None),
                    data_file=info.get('data_file'))
            if new_file in model['chain']:
                return kit.OverlayInfo(name=new_file, exists=True,
                                       fmt='qcow2')
            if CONF.fake.assume_overlays:
                active = location.active
                return kit.OverlayInfo(name=new_file, exists=True,
                                       fmt='qcow2', backing=active.name,
                                       backing_fmt=active.fmt)
        return kit.OverlayInfo(name=new_file, exists=False)

    def _apply(self, plan):
        delay = CONF.fake.operation_delay
        if plan.kind != kit.CREATE:
            with self._lock:
                _, model = self._find(plan.disk.volume_id)
                self._jobs[plan.disk.volume_id] = (
                    plan.snapshot_id, time.time(), delay, model['size'])
        if delay:
            time.sleep(delay)
        with self._lock:
            _, model = self._find(plan.disk.volume_id)
            if plan.kind in model['fail']:
                raise kit.OperationFailed(
                    reason="the fake driver was told to fail %s operations "
                           "on disk %s" % (plan.kind, plan.disk.target))
            if model['chain'] != plan.disk.names:
                raise kit.OperationFailed(
                    reason="the chain of disk %s changed since the request "
                           "was validated" % plan.disk.target)
            model['chain'] = list(plan.expected_chain)
            model['files'].pop(getattr(plan, 'new_file', None), None)
            return list(model['chain'])

    def create_snapshot(self, plan):
        return self._apply(plan)

    def delete_snapshot(self, plan):
        return self._apply(plan)

    def merge_progress(self, plan):
        """The simulated job: the disk's size, gone through evenly over
        ``[fake] operation_delay`` seconds."""
        with self._lock:
            job = self._jobs.get(plan.disk.volume_id)
        if job is None or job[0] != plan.snapshot_id:
            return None
        _, started, seconds, size = job
        elapsed = time.time() - started
        done = size if elapsed >= seconds else int(size * elapsed / seconds)
        return kit.JobProgress(done=done, total=size, started_at=started)
