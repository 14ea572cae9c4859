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

"""The Cinder loop on a real guest: Cinder's own code drives snapdriver's
libvirt driver, and both Cinder's database and the guest are the judges.

As in :mod:`test_cinder_loop`, a real ``cinder-api`` (noauth, SQLite)
receives snapdriver's status reports, and Cinder's remotefs driver methods
(``_create_snapshot_online``, ``_nova_assisted_vol_snap_delete``) send the
requests and wait on Cinder's database as in production. Here snapdriver
runs the ``libvirt`` driver against a TCG guest of the private libvirtd
(``tools/with-libvirtd.sh``): the volume is a Cinder-like qcow2 chain
attached as ``vdb`` beside another disk (``test_libvirt_contract.
attach_volume``), and the test makes each snapshot's overlay with qemu-img
first (relative backing name, ``-F qcow2``), as Cinder's driver does.

After every step: Cinder's DB shows the status its driver waits for
(``creating``/``deleting``, ``90%``), the chain in libvirt and in the qcow2
headers is the expected one, every header names its backing file
relatively, the guest sees exactly the data written so far (live writes
between the steps), and the other disk is untouched.

Needs both ``$SNAPDRIVER_TEST_LIBVIRT_URI`` and
``$SNAPDRIVER_TEST_CINDER_VENV``; skipped unless both are set.
"""

import re
import uuid

import fixtures

from snapdriver.tests.functional import guest
from snapdriver.tests.functional import server
from snapdriver.tests.functional import test_cinder_loop as loop
from snapdriver.tests.functional import test_libvirt_contract as builder

#: Cinder's own waits (and TCG) are slow; one remotefs call may take this.
CALL_TIMEOUT = 120


class CinderLoopLibvirtTestCase(loop.CinderLoopTestCase):
    """Cinder, snapdriver (libvirt driver) and a real guest."""

    service_credentials = False

    def setUp(self):
        # Skips without Cinder's venv.
        super().setUp()
        self.uri = guest.libvirt_uri()
        if not self.uri:
            self.skipTest(guest.SKIP_REASON)
        self.useFixture(fixtures.Timeout(600, gentle=True))
        # One directory for the volume, as a Cinder NFS share's mount.
        self.share = self.useFixture(fixtures.TempDir()).path
        self._request_ids = {}

    def start_libvirt_snapdriver(self):
        extra = {'DEFAULT': {'status_reporter': 'cinder'},
                 'cinder': self.reporter_conf(),
                 'libvirt': {'connection_uri': self.uri,
                             'quiesce': 'never',
                             'block_job_poll_interval': 0.1}}
        snapdriver = self.useFixture(server.ApiServerFixture(
            driver='libvirt', extra_conf=extra))
        self._attach_log_on_failure('snapdriver-api.log',
                                    snapdriver.log_text)
        return snapdriver

    def request_ids(self, snapshot_id, request_id):
        """Cinder's request ids of every call so far on the snapshot:
        each of its status callbacks must carry one of them."""
        ids = self._request_ids.setdefault(snapshot_id, [])
        ids.append(request_id)
        return ids

    # Steps, each as Cinder's driver takes it.

    def cinder_create(self, side, volume, snapshot_id):
        """Cinder's create: the overlay with qemu-img (relative backing),
        then ``_create_snapshot_online``, which returns once Cinder's DB
        shows creating/90%."""
        backing = volume.names[0]
        new_file = volume.new_overlay(snapshot_id, backing=backing)
        self.assertEqual('volume-%s.%s' % (volume.volume_id, snapshot_id),
                         new_file)
        header = guest.backing_chain(volume.path(new_file))[0]
        self.assertEqual(backing, header['backing-filename'])
        answer = side.remotefs_create(snapshot_id, backing,
                                      volume.path(new_file),
                                      project_id=self.project,
                                      timeout=CALL_TIMEOUT)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'creating', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        self.assertCinderShows(side, snapshot_id, 'creating')
        operation = self.wait_delivery(self.snapdriver, snapshot_id)
        self.assertEqual(('create', 'succeeded'),
                         (operation['kind'], operation['state']),
                         operation)
        volume.names.insert(0, new_file)
        self.assertEqual(volume.names, operation['chain'])
        self.assertDelivered(operation, 'creating')
        self.assertReportedAs(snapshot_id, self.request_ids(
            snapshot_id, answer['result']['request_id']))
        # libvirt switched the guest onto the new overlay.
        self.assertEqual(volume.path(new_file), volume.active_path())
        volume.check()
        # Cinder's volume manager then marks the snapshot available.
        side.update_snapshot(snapshot_id, 'available', '100%')
        return new_file

    def cinder_delete(self, side, volume, snapshot_id, file_to_merge,
                      merge_target_file, kind, names_after):
        """Cinder's online delete: ``_nova_assisted_vol_snap_delete``,
        which returns once Cinder's DB shows deleting/90%."""
        # Cinder's API marks the snapshot deleting before the driver runs.
        side.update_snapshot(snapshot_id, 'deleting', '100%')
        answer = side.remotefs_delete(snapshot_id, {
            'type': 'qcow2', 'file_to_merge': file_to_merge,
            'merge_target_file': merge_target_file,
            'volume_id': volume.volume_id},
            project_id=self.project, timeout=CALL_TIMEOUT)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        self.assertCinderShows(side, snapshot_id, 'deleting')
        operation = self.wait_delivery(self.snapdriver, snapshot_id)
        self.assertEqual((kind, 'succeeded'),
                         (operation['kind'], operation['state']),
                         operation)
        self.assertEqual(names_after, operation['chain'])
        self.assertDelivered(operation, 'deleting')
        self.assertReportedAs(snapshot_id, self.request_ids(
            snapshot_id, answer['result']['request_id']))
        volume.names = list(names_after)
        volume.check()

    def test_create_commit_create_pull(self):
        self.shared_cinder()
        volume_id = str(uuid.uuid4())
        # volume-V as vdb (serial V), a root disk with data as vda; running,
        # one live write already in.
        volume = builder.attach_volume(self, self.uri, self.share, volume_id,
                                       layers=1)
        self.snapdriver = self.start_libvirt_snapdriver()
        side = self.cinder_side(self.snapdriver)
        s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))
        seeded = side.seed(volume_id, self.project, 'demo',
                           str(uuid.uuid4()),
                           {s: ('creating', '0%') for s in (s1, s2, s3)})
        self.assertEqual({'status': 'in-use', 'attach_status': 'attached'},
                         seeded['volume'])
        base = volume.names[0]
        self.assertEqual('volume-%s' % volume_id, base)

        # Create S1 and S2: volume-V <- .S1 <- .S2 (active), data written
        # live into each new active layer.
        f1 = self.cinder_create(side, volume, s1)
        volume.write()
        volume.check()
        f2 = self.cinder_create(side, volume, s2)
        volume.write()
        volume.check()
        self.assertEqual([f2, f1, base], volume.names)

        # Delete S1, not active: commit volume-V.S1 into volume-V.
        self.cinder_delete(side, volume, s1, file_to_merge=f1,
                           merge_target_file=base, kind='commit',
                           names_after=[f2, base])
        volume.write()
        volume.check()

        # Create S3 on top, then delete it while its file is the active
        # one: pull volume-V.S2 into volume-V.S3, which keeps volume-V
        # (named relatively) as its backing file.
        f3 = self.cinder_create(side, volume, s3)
        volume.write()
        volume.check()
        self.assertEqual([f3, f2, base], volume.names)
        self.cinder_delete(side, volume, s3, file_to_merge=base,
                           merge_target_file=None, kind='pull',
                           names_after=[f3, base])
        header = guest.backing_chain(volume.path(f3))[0]
        self.assertEqual(base, header['backing-filename'])
        volume.write()
        volume.check()
        # S2, whose file was pulled away, was never deleted: its one
        # status callback is the create's.
        updates = re.findall(r"Updating snapshot %s with info .*'status': "
                             r"'(\w+)'" % s2, self.cinder.log_text())
        self.assertEqual(['creating'], updates)

    def test_compute_client_create_then_flatten(self):
        # cinder.compute.nova.API alone (the test waits on Cinder's DB as
        # the driver would), then a delete of the active snapshot with no
        # base to keep: the whole chain is pulled into the active image.
        self.shared_cinder()
        volume_id = str(uuid.uuid4())
        volume = builder.attach_volume(self, self.uri, self.share, volume_id,
                                       layers=2)
        self.snapdriver = self.start_libvirt_snapdriver()
        side = self.cinder_side(self.snapdriver)
        snap = str(uuid.uuid4())
        self.seed(side, _SeedVolume(volume), {snap: ('creating', '0%')})

        new_file = volume.new_overlay(snap)
        answer = side.nova_create(volume_id, {
            'type': 'qcow2', 'new_file': new_file, 'snapshot_id': snap},
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        ids = self.request_ids(snap, answer['result']['request_id'])
        self.assertCinderShows(side, snap, 'creating')
        operation = self.wait_delivery(self.snapdriver, snap)
        self.assertEqual(('create', 'succeeded'),
                         (operation['kind'], operation['state']), operation)
        volume.names.insert(0, new_file)
        self.assertEqual(volume.names, operation['chain'])
        self.assertDelivered(operation, 'creating')
        volume.check()
        volume.write()
        volume.check()

        side.update_snapshot(snap, 'deleting', '100%')
        answer = side.nova_delete(snap, {
            'type': 'qcow2', 'file_to_merge': None,
            'merge_target_file': None, 'volume_id': volume_id},
            project_id=self.project)
        self.assertTrue(answer['ok'], answer)
        ids = self.request_ids(snap, answer['result']['request_id'])
        self.assertCinderShows(side, snap, 'deleting')
        operation = self.wait_delivery(self.snapdriver, snap)
        self.assertEqual(('pull', 'succeeded'),
                         (operation['kind'], operation['state']), operation)
        self.assertEqual([new_file], operation['chain'])
        self.assertDelivered(operation, 'deleting')
        self.assertReportedAs(snap, ids)
        volume.names = [new_file]
        volume.check()
        self.assertNotIn('backing-filename',
                         guest.backing_chain(volume.path(new_file))[0])
        volume.write()
        volume.check()


class _SeedVolume:
    """What :meth:`CinderLoopTestCase.seed` reads of a volume."""

    def __init__(self, volume):
        self.id = volume.volume_id
        self.instance = str(uuid.uuid4())
