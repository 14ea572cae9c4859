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

"""The driver contract suite: one set of tests that every driver runs.

A test class mixes :class:`DriverContractTests` into a TestCase (such as
:class:`snapdriver.testing.TestCase`) and provides ``make_host()``,
returning a :class:`Host` for its driver. The tests go through the
operation manager, as the API does, so they check the driver together with
the chain rules: the same requests give the same 400s and the same
resulting chains whatever the driver.

Stub drivers run :class:`UnsupportedDriverContractTests` instead.

Shipped with snapdriver (not in its test tree) so that drivers in other
distributions run it too; import it as :mod:`snapdriver.testing`.
"""

import abc

from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import reporter as reporter_mod


class RecordingReporter(reporter_mod.StatusReporter):
    """Keeps every status it is given: the final reports in ``reports``,
    the intermediate ones in ``progress_reports``, both in ``sequence``
    in the order they came."""

    def __init__(self):
        self.reports = []
        self.progress_reports = []
        self.sequence = []

    def report(self, context, snapshot_id, status,
               progress=reporter_mod.PROGRESS, on_retry=None):
        self.reports.append((snapshot_id, status, progress))
        self.sequence.append((snapshot_id, status, progress))
        return reporter_mod.Delivery(state=objects.DELIVERED,
                                     detail='recorded')

    def report_progress(self, context, snapshot_id, status, progress):
        self.progress_reports.append((snapshot_id, status, progress))
        self.sequence.append((snapshot_id, status, progress))
        return reporter_mod.Delivery(state=objects.DELIVERED,
                                     detail='recorded')


class Host(abc.ABC):
    """A hypervisor host for the contract suite, with volumes on it."""

    @abc.abstractmethod
    def driver(self):
        """The driver under test."""

    @abc.abstractmethod
    def add_volume(self, volume_id, layers=3, running=True):
        """Attach a volume whose chain has ``layers`` images.

        :returns: the chain's names, active first.
        """

    @abc.abstractmethod
    def add_file(self, volume_id, name, backing=None, fmt='qcow2'):
        """Create a file beside the volume's active image, as Cinder does
        for an overlay (``backing`` as the header should record it)."""

    def check_data(self, volume_id):
        """Check that the guest still sees the data it had (real drivers
        override this)."""


class _ManagerMixin:

    def _start(self):
        self.host = self.make_host()
        self.reporter = RecordingReporter()
        self.manager = manager_mod.OperationManager(self.host.driver(),
                                                    self.reporter)
        self.addCleanup(self.manager.stop)

    def _run(self, request):
        """Accept ``request`` (a :mod:`snapdriver.objects` request), wait
        for it, and return its :class:`snapdriver.objects.OperationView`."""
        self.manager.accept(None, request)
        self.assertTrue(self.manager.wait_idle(self.operation_timeout))
        return self.manager.query(None, request.snapshot_id)[-1]

    def _chain(self, volume_id):
        return self.host.driver().locate_disk(volume_id).names


class DriverContractTests(_ManagerMixin):
    """What every driver that supports assisted snapshots must do."""

    operation_timeout = 120

    def make_host(self):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        self._start()

    def create(self, volume_id, snapshot_id, new_file):
        return self._run(objects.CreateRequest(
            volume_id=volume_id, snapshot_id=snapshot_id, new_file=new_file))

    def delete(self, volume_id, snapshot_id, file_to_merge,
               merge_target_file):
        return self._run(objects.DeleteRequest(
            volume_id=volume_id, snapshot_id=snapshot_id,
            file_to_merge=file_to_merge,
            merge_target_file=merge_target_file))

    def assert_refused(self, error, request):
        """Accepting ``request`` raises ``error``, and nothing changed."""
        volume_id = request.volume_id
        before = self._chain(volume_id)
        self.assertRaises(error, self.manager.accept, None, request)
        self.assertEqual(before, self._chain(volume_id))
        self.assertEqual([], self.reporter.reports)
        self.host.check_data(volume_id)

    def test_capabilities(self):
        caps = self.host.driver().capabilities()
        self.assertTrue(caps.create)
        self.assertTrue(caps.pull)
        self.assertTrue(caps.commit)

    def test_locate_unknown_volume(self):
        self.assertRaises(exception.VolumeNotAttached,
                          self.host.driver().locate_disk, 'no-such-volume')

    def test_create(self):
        names = self.host.add_volume('vol-c')
        self.host.add_file('vol-c', 'vol-c.s1', backing=names[0])
        operation = self.create('vol-c', 's1', 'vol-c.s1')
        self.assertEqual('succeeded', operation.state, operation.error)
        self.assertEqual(['vol-c.s1'] + names, self._chain('vol-c'))
        self.assertEqual(['vol-c.s1'] + names, operation.chain)
        self.assertEqual([('s1', 'creating', '90%')], self.reporter.reports)
        self.host.check_data('vol-c')

    def test_two_creates_in_a_row(self):
        names = self.host.add_volume('vol-2c', layers=1)
        self.host.add_file('vol-2c', 'a', backing=names[0])
        self.create('vol-2c', 's1', 'a')
        self.host.add_file('vol-2c', 'b', backing='a')
        operation = self.create('vol-2c', 's2', 'b')
        self.assertEqual(['b', 'a'] + names, operation.chain)
        self.assertEqual(['creating', 'creating'],
                         [r[1] for r in self.reporter.reports])
        self.host.check_data('vol-2c')

    def test_create_refuses_missing_overlay(self):
        self.host.add_volume('vol-m')
        self.assert_refused(exception.InvalidOverlay, objects.CreateRequest(
            volume_id='vol-m', snapshot_id='s', new_file='missing'))

    def test_create_refuses_overlay_of_another_image(self):
        names = self.host.add_volume('vol-w')
        self.host.add_file('vol-w', 'vol-w.bad', backing=names[1])
        self.assert_refused(exception.InvalidOverlay, objects.CreateRequest(
            volume_id='vol-w', snapshot_id='s', new_file='vol-w.bad'))

    def test_create_refuses_raw_overlay(self):
        self.host.add_volume('vol-r')
        self.host.add_file('vol-r', 'vol-r.raw', fmt='raw')
        self.assert_refused(exception.InvalidOverlay, objects.CreateRequest(
            volume_id='vol-r', snapshot_id='s', new_file='vol-r.raw'))

    def test_create_refuses_path_in_new_file(self):
        self.host.add_volume('vol-p')
        for name in ('../x', '/etc/passwd', 'a/b', '..', '.'):
            self.assert_refused(exception.InvalidFileName,
                                objects.CreateRequest(
                                    volume_id='vol-p', snapshot_id='s',
                                    new_file=name))

    def test_create_refuses_unknown_volume(self):
        self.assertRaises(exception.VolumeNotAttached, self.manager.accept,
                          None, objects.CreateRequest(
                              volume_id='nope', snapshot_id='s',
                              new_file='x'))

    def test_commit_middle_layer(self):
        names = self.host.add_volume('vol-cm', layers=4)
        operation = self.delete('vol-cm', 's', names[1], names[2])
        self.assertEqual('commit', operation.kind)
        self.assertEqual('succeeded', operation.state, operation.error)
        expected = [names[0]] + names[2:]
        self.assertEqual(expected, self._chain('vol-cm'))
        self.assertEqual([('s', 'deleting', '90%')], self.reporter.reports)
        self.host.check_data('vol-cm')

    def test_pull_with_base(self):
        names = self.host.add_volume('vol-pb', layers=4)
        operation = self.delete('vol-pb', 's', names[2], None)
        self.assertEqual('pull', operation.kind)
        self.assertEqual('succeeded', operation.state, operation.error)
        self.assertEqual([names[0]] + names[2:], self._chain('vol-pb'))
        self.host.check_data('vol-pb')

    def test_pull_without_base(self):
        names = self.host.add_volume('vol-pn', layers=3)
        operation = self.delete('vol-pn', 's', None, None)
        self.assertEqual('succeeded', operation.state, operation.error)
        self.assertEqual([names[0]], self._chain('vol-pn'))
        self.host.check_data('vol-pn')

    def test_delete_refuses_bad_references(self):
        names = self.host.add_volume('vol-bad', layers=4)
        for file_to_merge, target in (('nope.img', None),
                                      (names[1], names[3]),
                                      (names[0], names[1]),
                                      (names[0], None),
                                      (None, names[1]),
                                      (names[3], 'x')):
            self.assert_refused(exception.InvalidChainReference,
                                objects.DeleteRequest(
                                    volume_id='vol-bad', snapshot_id='s',
                                    file_to_merge=file_to_merge,
                                    merge_target_file=target))

    def test_offline_pull_and_commit(self):
        names = self.host.add_volume('vol-off', layers=4, running=False)
        self.assertEqual('succeeded',
                         self.delete('vol-off', 's1', names[1],
                                     names[2]).state)
        self.assertEqual('succeeded',
                         self.delete('vol-off', 's2', names[2],
                                     None).state)
        self.assertEqual([names[0]] + names[2:], self._chain('vol-off'))
        self.assertEqual(['deleting', 'deleting'],
                         [r[1] for r in self.reporter.reports])
        self.host.check_data('vol-off')


class UnsupportedDriverContractTests(_ManagerMixin):
    """What a stub driver must do: refuse everything, before anything."""

    operation_timeout = 10
    driver_name = None

    def setUp(self):
        super().setUp()
        self._start()

    def _assert_rejected(self, call, *args):
        error = self.assertRaises(exception.UnsupportedOperation, call, *args)
        self.assertEqual(400, error.code)
        self.assertIn("The %s driver does not support" % self.driver_name,
                      str(error))
        self.assertIn("only implemented by the libvirt driver", str(error))

    def test_capabilities_are_empty(self):
        caps = self.host.driver().capabilities()
        self.assertFalse(any(caps.as_dict().values()))

    def test_every_method_rejects(self):
        driver = self.host.driver()
        self._assert_rejected(driver.locate_disk, 'v')
        self._assert_rejected(driver.inspect_overlay, None, 'f')
        self._assert_rejected(driver.create_snapshot, None)
        self._assert_rejected(driver.delete_snapshot, None)

    def test_create_and_delete_are_rejected_synchronously(self):
        self._assert_rejected(self.manager.accept, None,
                              objects.CreateRequest(
                                  volume_id='v', snapshot_id='s',
                                  new_file='f'))
        self._assert_rejected(self.manager.accept, None,
                              objects.DeleteRequest(
                                  volume_id='v', snapshot_id='s',
                                  file_to_merge=None,
                                  merge_target_file=None))
        self.assertEqual([], self.reporter.reports)
