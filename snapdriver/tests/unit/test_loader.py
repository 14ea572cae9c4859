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

"""Driver and reporter loading through stevedore (snapdriver.plugins)."""

from unittest import mock

from snapdriver.drivers import fake
from snapdriver.drivers import loader
from snapdriver.drivers import stubs
from snapdriver import exception
from snapdriver.operations import reporter
from snapdriver import plugins
from snapdriver.tests import base


class TestLoader(base.TestCase):

    def test_in_tree_drivers_are_installed(self):
        names = loader.installed_names()
        for name in ('fake', 'libvirt', 'vmware', 'hyperv', 'ironic', 'zvm',
                     'powervm', 'xenapi'):
            self.assertIn(name, names)

    def test_load_sets_name(self):
        driver = loader.load('zvm')
        self.assertIsInstance(driver, stubs.ZVMDriver)
        self.assertEqual('zvm', driver.name)
        self.assertIsInstance(loader.load('fake'), fake.FakeDriver)

    def test_unknown_name_lists_installed(self):
        error = self.assertRaises(exception.DriverNotFound, loader.load,
                                  'nosuch')
        self.assertIn("'nosuch'", str(error))
        self.assertIn('fake', str(error))
        self.assertIn('libvirt', str(error))

    def test_constructor_failure_keeps_its_message(self):
        self.conf.config(inventory_file='/nonexistent/inv.json',
                         group='fake')
        error = self.assertRaises(exception.DriverLoadError, loader.load,
                                  'fake')
        self.assertIn('/nonexistent/inv.json', str(error))

    def test_import_error_shows_cause(self):
        with mock.patch.object(fake, 'FakeDriver',
                               side_effect=ImportError('no module x')):
            error = self.assertRaises(exception.DriverLoadError,
                                      loader.load, 'fake')
        self.assertIn('ImportError: no module x', str(error))

    def test_reporters(self):
        self.assertIsInstance(
            plugins.load(reporter.NAMESPACE, 'log', 'status reporter'),
            reporter.LogReporter)
        error = self.assertRaises(exception.DriverNotFound, plugins.load,
                                  reporter.NAMESPACE, 'nosuch',
                                  'status reporter')
        self.assertIn("No status reporter named 'nosuch'", str(error))
        self.assertIn('cinder, log', str(error))

    def test_reporter_failure_is_built_as_a_driver_failure(self):
        with mock.patch.object(reporter, 'LogReporter',
                               side_effect=ValueError('bad option')):
            error = self.assertRaises(exception.DriverLoadError,
                                      plugins.load, reporter.NAMESPACE,
                                      'log', 'status reporter')
        self.assertEqual("The status reporter 'log' could not be loaded: "
                         "ValueError: bad option", str(error))

    def test_driver_load_error_from_a_reporter_goes_through(self):
        own = exception.DriverLoadError(driver='log', reason='no way')
        with mock.patch.object(reporter, 'LogReporter', side_effect=own):
            error = self.assertRaises(exception.DriverLoadError,
                                      plugins.load, reporter.NAMESPACE,
                                      'log', 'status reporter')
        self.assertIs(own, error)

    def test_nothing_installed_in_a_namespace(self):
        error = self.assertRaises(exception.DriverNotFound, plugins.load,
                                  'snapdriver.no_such_namespace', 'x',
                                  'host locator')
        self.assertEqual("No host locator named 'x' is installed (entry "
                         "point namespace snapdriver.no_such_namespace); "
                         "installed: none.", str(error))


class TestStatusValues(base.TestCase):

    def test_cinder_status_values(self):
        self.assertEqual('creating', reporter.status_for('create', True))
        self.assertEqual('error', reporter.status_for('create', False))
        self.assertEqual('deleting', reporter.status_for('delete', True))
        self.assertEqual('error_deleting',
                         reporter.status_for('delete', False))
