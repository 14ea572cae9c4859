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

"""One volume on one TCG guest, worked on either through snapdriver or
directly through libvirt (the baseline).

Both sides keep the same model of the volume's chain (file names, active
first) and are driven through the same three operations, so a benchmark
can do exactly the same thing to two guests and compare.

The baseline is the bare sequence a compute service must at least run:

* create: the overlay check snapdriver also does (``qemu-img info
  --output=json --force-share`` of the overlay), then ``snapshotCreateXML``
  with DISK_ONLY | NO_METADATA | REUSE_EXT (the guest is never quiesced);
* commit / pull: ``blockCommit`` / ``blockRebase`` with the RELATIVE flag
  (none for a pull with no base), then the wait for libvirt's BLOCK_JOB_2
  COMPLETED event on the benchmark's own connection.

snapdriver is driven as Cinder drives it: POST or DELETE, then the wait
for its ``os-update_snapshot_status`` report at the Cinder stub.
"""

import itertools
import json
import os
import subprocess
import time
import urllib.parse
from xml.etree import ElementTree

from bench import common
from snapdriver.tests.functional import guest as guest_mod

TARGET = 'vdb'
ROOT = 'vda'
_ids = itertools.count(1)


def fill_layer(directory, name, backing, size_mb, pattern=0x5a, chunk_mb=64):
    """A qcow2 layer whose whole ``size_mb`` holds data, backing onto
    ``backing`` (a relative name).

    It is written on its own and then linked to its backing with an unsafe
    rebase (header only): qemu-io cannot open the backing file read-write
    while the guest has it open.
    """
    path = os.path.join(directory, name)
    common.run('qemu-img', 'create', '-q', '-f', 'qcow2', path,
               '%dM' % size_mb)
    cmds = []
    for offset in range(0, size_mb, chunk_mb):
        length = min(chunk_mb, size_mb - offset)
        cmds += ['-c', 'write -P 0x%02x %dM %dM' % (pattern, offset, length)]
    common.run('qemu-io', '-f', 'qcow2', *cmds, path)
    common.run('qemu-img', 'rebase', '-q', '-u', '-f', 'qcow2', '-F', 'qcow2',
               '-b', backing, path)
    return path


def build_chain(directory, base, length):
    """``length - 1`` empty overlays on top of ``base``; returns the names,
    active first."""
    names = [base]
    for i in range(1, length):
        name = '%s.chain-%03d' % (base, i)
        guest_mod.create_overlay(directory, name, names[0])
        names.insert(0, name)
    return names


class Volume:
    """A guest (no OS, TCG) with a root disk ``vda`` and a Cinder-style
    volume ``vdb`` (qcow2, serial = volume id), and the model of the
    volume's chain.

    :param events: the benchmark's :class:`common.Events`; the baseline
        uses its connection, and its events tell when block jobs end.
    :param depth: images in the volume's chain at start (built offline).
    :param running: start it; with ``paused`` it is suspended right away
        (an extra guest that only has to be listed by snapdriver).
    """

    def __init__(self, events, uri, directory, label, size_mb=64, depth=1,
                 paused=False):
        self.events = events
        self.volume_id = 'bench-%s-%s' % (label, os.urandom(4).hex())
        # A directory per guest: the root disk's file name is fixed.
        self.directory = os.path.join(directory, self.volume_id)
        os.makedirs(self.directory)
        directory = self.directory
        self.fixture = guest_mod.GuestFixture(
            uri, directory, self.volume_id, size_mb=size_mb, running=False,
            extra_disks=[guest_mod.Disk(ROOT, size_mb=16)],
            volume_target=TARGET)
        self.fixture.setUp()
        try:
            self.chain = build_chain(directory, self.fixture.volume_name,
                                     depth)
            if depth > 1:
                self._point_at(self.chain[0])
            self.fixture.start()
            self.dom = events.conn.lookupByUUIDString(
                self.fixture.domain.UUIDString())
            self.uuid = self.dom.UUIDString()
            if paused:
                self.dom.suspend()
        except BaseException:
            self.fixture.cleanUp()
            raise

    def _point_at(self, name):
        """Make the defined (not running) domain's volume source ``name``."""
        conn = self.fixture.conn
        libvirt = self.events.libvirt
        root = ElementTree.fromstring(self.fixture.domain.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE))
        for disk in root.findall('./devices/disk'):
            if disk.find('target').get('dev') == TARGET:
                disk.find('source').set('file', self.path(name))
        self.fixture.domain = conn.defineXML(
            ElementTree.tostring(root, encoding='unicode'))

    def path(self, name):
        return os.path.join(self.directory, name)

    @property
    def active(self):
        return self.chain[0]

    def new_name(self, tag):
        return '%s.%s-%d' % (self.fixture.volume_name, tag, next(_ids))

    def add_overlay(self, tag):
        """Cinder's part of a create: the overlay file, on the active
        image. Not timed."""
        name = self.new_name(tag)
        guest_mod.create_overlay(self.directory, name, self.active)
        return name

    def libvirt_chain(self):
        """The chain as libvirt shows it now (names, active first)."""
        return [os.path.basename(p)
                for p in guest_mod.domain_chain(self.dom, TARGET)]

    def check(self):
        """Fail unless libvirt's chain is the model's."""
        actual = self.libvirt_chain()
        if actual != self.chain:
            raise common.BenchError('chain of %s is %s, expected %s' % (
                self.volume_id, ' -> '.join(actual), ' -> '.join(self.chain)))

    def switch_direct(self, name):
        """Snapshot onto ``name`` through libvirt, untimed (set-up)."""
        self.dom.snapshotCreateXML(self.snapshot_xml(name), _create_flags(
            self.events.libvirt))
        self.chain.insert(0, name)

    def snapshot_xml(self, new_name):
        E, Sub = ElementTree.Element, ElementTree.SubElement
        root = E('domainsnapshot')
        disks = Sub(root, 'disks')
        disk = Sub(disks, 'disk', name=self.path(self.active),
                   snapshot='external', type='file')
        Sub(disk, 'source', file=self.path(new_name))
        Sub(disks, 'disk', name=ROOT, snapshot='no')
        return ElementTree.tostring(root, encoding='unicode')

    # The model after a merge.

    def committed(self, top, base):
        index = self.chain.index(top)
        if self.chain[index + 1] != base:
            raise common.BenchError('%s is not directly above %s' % (top,
                                                                     base))
        del self.chain[index]
        return [top]

    def pulled(self, base):
        stop = self.chain.index(base) if base else len(self.chain)
        gone = self.chain[1:stop]
        del self.chain[1:stop]
        return gone

    def remove(self, names):
        """Delete files no longer in the chain, as Cinder does."""
        for name in names:
            os.unlink(self.path(name))

    def destroy(self):
        self.fixture.cleanUp()


def _create_flags(libvirt):
    return (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
            | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
            | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT)


class Baseline:
    """The volume worked on directly through libvirt."""

    name = 'baseline'

    def __init__(self, volume):
        self.volume = volume
        self.libvirt = volume.events.libvirt

    def create(self, new_name):
        """:returns: {'total', 'info', 'libvirt'} in seconds."""
        vol = self.volume
        xml = vol.snapshot_xml(new_name)
        path = vol.path(new_name)
        t0 = time.monotonic()
        out = subprocess.run(['qemu-img', 'info', '--output=json',
                              '--force-share', path], check=True,
                             stdin=subprocess.DEVNULL, capture_output=True,
                             text=True).stdout
        if json.loads(out).get('backing-filename') != vol.active:
            raise common.BenchError('%s does not back onto %s'
                                    % (new_name, vol.active))
        t1 = time.monotonic()
        vol.dom.snapshotCreateXML(xml, _create_flags(self.libvirt))
        t2 = time.monotonic()
        vol.chain.insert(0, new_name)
        return {'total': t2 - t0, 'info': t1 - t0, 'libvirt': t2 - t1}

    def commit(self, top, base):
        """:returns: {'total'} (call to COMPLETED event), and 'gone'."""
        vol = self.volume
        mark = vol.events.mark()
        t0 = time.monotonic()
        vol.dom.blockCommit(TARGET, base, top, 0,
                            self.libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)
        t_end, status = vol.events.wait_end(vol.uuid, TARGET, mark)
        self._check_status(status, 'commit')
        return {'total': t_end - t0, 'gone': vol.committed(top, base)}

    def pull(self, base):
        vol = self.volume
        flags = self.libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE if base else 0
        mark = vol.events.mark()
        t0 = time.monotonic()
        vol.dom.blockRebase(TARGET, base, 0, flags)
        t_end, status = vol.events.wait_end(vol.uuid, TARGET, mark)
        self._check_status(status, 'pull')
        return {'total': t_end - t0, 'gone': vol.pulled(base)}

    def _check_status(self, status, what):
        if status != self.libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED:
            raise common.BenchError('baseline block %s on %s ended with '
                                    'status %s' % (what, self.volume.volume_id,
                                                   status))


class ViaSnapdriver:
    """The volume worked on through snapdriver's API, as Cinder does."""

    def __init__(self, volume, snapdriver, stub, name='snapdriver'):
        self.volume = volume
        self.sd = snapdriver
        self.stub = stub
        self.name = name

    def _snapshot_id(self, tag):
        return '%s-%s-%d' % (tag, self.volume.volume_id, next(_ids))

    def create(self, new_name):
        """:returns: {'total' (POST to report), 'accept' (POST to 200)}."""
        vol = self.volume
        snapshot_id = self._snapshot_id('create')
        body = {'snapshot': {'volume_id': vol.volume_id, 'create_info': {
            'snapshot_id': snapshot_id, 'type': 'qcow2',
            'new_file': new_name}}}
        wall0, t0 = time.time(), time.monotonic()
        status, answer = self.sd.call('POST', '/os-assisted-volume-snapshots',
                                      body)
        t_accept = time.monotonic()
        if status != 200:
            raise common.BenchError('POST create %s: %s %s'
                                    % (new_name, status, answer))
        t_report, reported = self.stub.wait(snapshot_id)
        if reported != 'creating':
            raise common.BenchError('create %s reported %s'
                                    % (new_name, reported))
        self.sd.settled(snapshot_id)
        vol.chain.insert(0, new_name)
        return {'total': t_report - t0, 'accept': t_accept - t0,
                'snapshot_id': snapshot_id, 'wall_sent': wall0,
                'wall_reported': wall0 + (t_report - t0)}

    def _delete(self, file_to_merge, merge_target_file):
        vol = self.volume
        snapshot_id = self._snapshot_id('delete')
        info = {'volume_id': vol.volume_id, 'type': 'qcow2',
                'file_to_merge': file_to_merge,
                'merge_target_file': merge_target_file}
        path = '/os-assisted-volume-snapshots/%s?delete_info=%s' % (
            snapshot_id, urllib.parse.quote(json.dumps(info)))
        mark = vol.events.mark()
        wall0, t0 = time.time(), time.monotonic()
        status, answer = self.sd.call('DELETE', path)
        t_accept = time.monotonic()
        if status != 204:
            raise common.BenchError('DELETE %s: %s %s' % (info, status,
                                                          answer))
        t_report, reported = self.stub.wait(snapshot_id)
        if reported != 'deleting':
            raise common.BenchError('delete %s reported %s'
                                    % (info, reported))
        t_end, _status = vol.events.wait_end(vol.uuid, TARGET, mark)
        self.sd.settled(snapshot_id)
        return {'total': t_report - t0, 'accept': t_accept - t0,
                'to_event': t_end - t0, 'event_to_report': t_report - t_end,
                'snapshot_id': snapshot_id, 'wall_sent': wall0,
                'wall_event': wall0 + (t_end - t0),
                'wall_reported': wall0 + (t_report - t0)}

    def commit(self, top, base):
        result = self._delete(top, base)
        result['gone'] = self.volume.committed(top, base)
        return result

    def pull(self, base):
        result = self._delete(base, None)
        result['gone'] = self.volume.pulled(base)
        return result
