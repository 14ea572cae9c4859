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

"""The driver kit: one import point and the checks drivers share."""

import ast
import os

import fixtures

from snapdriver import chain
from snapdriver.drivers import kit
from snapdriver import exception
from snapdriver.tests import base


class TestExports(base.TestCase):

    def test_everything_named_is_there(self):
        for name in kit.__all__:
            self.assertTrue(hasattr(kit, name), name)

    def test_the_same_objects_as_their_modules(self):
        self.assertIs(chain.DiskLocation, kit.DiskLocation)
        self.assertIs(exception.OperationFailed, kit.OperationFailed)
        self.assertEqual(chain.PULL, kit.PULL)


TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
EXAMPLE = os.path.join(TOP, 'examples', 'snapdriver-example-driver')


def _snapdriver_imports(path):
    """The snapdriver modules that the module at ``path`` imports."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ['%s.%s' % (node.module, alias.name)
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names
                     if name.split('.')[0] == 'snapdriver')
    return found


class TestImportPoints(base.TestCase):
    """Out-of-tree code needs one module of snapdriver's for a driver and
    one for its tests, and never snapdriver's own test tree."""

    def test_example_driver_uses_only_the_kit(self):
        self.assertEqual({'snapdriver.drivers.kit'}, _snapdriver_imports(
            os.path.join(EXAMPLE, 'snapdriver_example_driver', 'driver.py')))

    def test_example_tests_use_only_snapdriver_testing(self):
        self.assertEqual({'snapdriver.testing'}, _snapdriver_imports(
            os.path.join(EXAMPLE, 'tests', 'test_contract.py')))

    def test_fake_driver_uses_the_kit(self):
        self.assertEqual(
            {'snapdriver.drivers.kit', 'snapdriver.conf.CONF'},
            _snapdriver_imports(os.path.join(TOP, 'snapdriver', 'drivers',
                                             'fake.py')))

    def test_snapdriver_testing_does_not_need_the_test_tree(self):
        directory = os.path.join(TOP, 'snapdriver', 'testing')
        for name in os.listdir(directory):
            if name.endswith('.py'):
                imported = _snapdriver_imports(os.path.join(directory, name))
                self.assertEqual(
                    [], [m for m in imported
                         if m.startswith('snapdriver.tests')], name)


class TestTheOneDisk(base.TestCase):

    DISKS = [('v1', 'g1', 'g1-vda'), (None, 'g1', 'g1-hdc'),
             ('v2', 'g2', 'g2-vdb')]

    def test_found(self):
        self.assertEqual('g2-vdb', kit.the_one_disk('v2', iter(self.DISKS)))

    def test_not_attached(self):
        error = self.assertRaises(exception.VolumeNotAttached,
                                  kit.the_one_disk, 'v3', self.DISKS)
        self.assertIn('<serial>v3</serial>', str(error))

    def test_no_serial_is_no_match(self):
        self.assertRaises(exception.VolumeNotAttached, kit.the_one_disk,
                          None, [])

    def test_multi_attached_names_the_guests_sorted(self):
        error = self.assertRaises(
            exception.VolumeMultiAttached, kit.the_one_disk, 'v',
            [('v', 'zeta (disk vdb)', 1), ('v', 'alpha (disk vdc)', 2)])
        self.assertEqual(400, error.code)
        self.assertIn('(alpha (disk vdc), zeta (disk vdb))', str(error))


class TestOverlayPath(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def _file(self, name):
        path = os.path.join(self.dir, name)
        with open(path, 'wb') as f:
            f.write(b'QFI\xfb')
        return path

    def test_regular_file(self):
        path = self._file('vol.s1')
        self.assertEqual(path, kit.overlay_path(self.dir, 'vol.s1'))

    def test_missing(self):
        self.assertIsNone(kit.overlay_path(self.dir, 'vol.s1'))

    def test_symbolic_links_are_refused(self):
        target = self._file('vol.real')
        os.symlink(target, os.path.join(self.dir, 'vol.link'))
        os.symlink('/nonexistent', os.path.join(self.dir, 'vol.dangling'))
        for name in ('vol.link', 'vol.dangling'):
            error = self.assertRaises(exception.InvalidOverlay,
                                      kit.overlay_path, self.dir, name)
            self.assertIn('%r in %s is a symbolic link' % (name, self.dir),
                          str(error))

    def test_not_a_regular_file(self):
        os.mkdir(os.path.join(self.dir, 'vol.dir'))
        os.mkfifo(os.path.join(self.dir, 'vol.fifo'))
        for name in ('vol.dir', 'vol.fifo'):
            error = self.assertRaises(exception.InvalidOverlay,
                                      kit.overlay_path, self.dir, name)
            self.assertIn('is not a regular file', str(error))

    def test_outside_the_directory(self):
        # check_file_name keeps such names out; the check stands anyway.
        error = self.assertRaises(exception.InvalidOverlay,
                                  kit.overlay_path, self.dir, '..')
        self.assertIn("resolves to %s, outside %s"
                      % (os.path.dirname(os.path.realpath(self.dir)),
                         self.dir), str(error))

    def test_directory_through_a_link_is_fine(self):
        path = self._file('vol.s1')
        link = os.path.join(self.useFixture(fixtures.TempDir()).path, 'mnt')
        os.symlink(self.dir, link)
        self.assertEqual(os.path.join(link, 'vol.s1'),
                         kit.overlay_path(link, 'vol.s1'))
        self.assertTrue(os.path.samefile(path, os.path.join(link, 'vol.s1')))


def _disk(names):
    return chain.DiskLocation(
        volume_id='v', guest='g', target='vdb', running=True,
        chain=tuple(chain.ChainEntry(name=n, path='/d/' + n) for n in names),
        directory='/d')


class TestChainChecks(base.TestCase):

    def test_unchanged(self):
        kit.check_unchanged(_disk(['b', 'a']), ['b', 'a'])
        kit.check_unchanged(_disk(['b', 'a']), ('b', 'a'))

    def test_changed(self):
        error = self.assertRaises(exception.OperationFailed,
                                  kit.check_unchanged, _disk(['b', 'a']),
                                  ['c', 'b', 'a'])
        self.assertEqual("The chain of volume v changed after the request "
                         "was accepted: it was b -> a, now c -> b -> a.",
                         str(error))

    def test_result(self):
        plan = chain.plan_delete(_disk(['c', 'b', 'a']), 's', 'b', 'a')
        self.assertEqual(['c', 'a'], kit.check_result(plan, ('c', 'a')))

    def test_unexpected_result(self):
        plan = chain.plan_delete(_disk(['c', 'b', 'a']), 's', 'b', 'a')
        error = self.assertRaises(exception.OperationFailed,
                                  kit.check_result, plan, ['c', 'b', 'a'])
        self.assertEqual("After the commit, the chain of disk vdb of guest g "
                         "should be c -> a but is c -> b -> a.", str(error))
        error = self.assertRaises(exception.OperationFailed,
                                  kit.check_result, plan, ['c'],
                                  'block commit', ' The job failed.')
        self.assertIn('After the block commit,', str(error))
        self.assertTrue(str(error).endswith('but is c. The job failed.'))
