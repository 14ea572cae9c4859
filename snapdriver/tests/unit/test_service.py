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

"""Start-up: the journal's lock (one process per journal), and the options
without defaults."""

import os
import signal
import socket
from unittest import mock

import fixtures
from oslo_reports import guru_meditation_report as gmr

from snapdriver import exception
from snapdriver.operations import journal as journal_mod
from snapdriver import service
from snapdriver.tests import base
from snapdriver import version


class TestJournalLock(base.TestCase):

    def setUp(self):
        super().setUp()
        held = []
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.operations.journal._HELD', held))
        self.addCleanup(lambda: [os.close(fd) for fd in held])
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'j', 'journal.sqlite')
        self.conf.config(connection='sqlite:///' + self.path,
                         group='database')
        self.conf.config(driver='fake', status_reporter='log')
        self.loaded = []
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.loader.load', self.loaded.append))

    def test_the_holder_is_named_before_any_driver_loads(self):
        journal_mod.lock('sqlite:///' + self.path)
        error = self.assertRaises(exception.JournalInUse,
                                  service.build_operations)
        self.assertIsInstance(error, exception.ConfigurationError)
        self.assertIn('the operation journal %s is in use by another '
                      'process: pid %d on host %s (' % (
                          self.path, os.getpid(), socket.gethostname()),
                      str(error))
        self.assertIn('One snapdriver-api (without [api] dispatch = agents) '
                      'or snapdriver-agent per journal', str(error))
        # The driver (whose start-up may touch guests) was not loaded.
        self.assertEqual([], self.loaded)

    def test_the_lock_file_is_private(self):
        self.assertEqual(self.path + '.lock',
                         journal_mod.lock('sqlite:///' + self.path))
        self.assertEqual(0o600, os.stat(self.path + '.lock').st_mode & 0o777)

    def test_an_in_memory_journal_needs_no_lock(self):
        self.assertIsNone(journal_mod.lock('sqlite://'))


class TestNoDevelopmentDefaults(base.TestCase):

    def setUp(self):
        super().setUp()
        self.loaded = []
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.loader.load', self.loaded.append))
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.service._lock_journal', lambda: None))

    def test_no_driver_stops_start_up_naming_the_option(self):
        self.conf.config(status_reporter='log')
        error = self.assertRaises(exception.ConfigurationError,
                                  service.build_operations)
        self.assertEqual("[DEFAULT] driver is not set: set it to 'libvirt' "
                         "on a hypervisor host, 'fake' for tests and demos. "
                         "It has no default, so that no development setting "
                         "runs in production by mistake.", str(error))
        self.assertEqual([], self.loaded)

    def test_no_status_reporter_stops_start_up(self):
        self.conf.config(driver='libvirt')
        error = self.assertRaises(exception.ConfigurationError,
                                  service.build_operations)
        self.assertIn("[DEFAULT] status_reporter is not set: set it to "
                      "'cinder' in production", str(error))
        self.assertEqual([], self.loaded)


class TestReports(base.TestCase):
    """Guru Meditation Reports on SIGUSR2, as the compute service has."""

    def test_setup_reports(self):
        autorun = self.useFixture(fixtures.MockPatchObject(
            gmr.TextGuruMeditation, 'setup_autorun')).mock
        service.setup_reports('snapdriver-api')
        autorun.assert_called_once_with(
            version, service_name='snapdriver-api', conf=base.CONF)

    def test_sigusr2_is_handled(self):
        # The real set-up, with the handler caught rather than installed.
        self.conf.config(log_dir='/var/log/snapdriver', group='oslo_reports')
        installed = self.useFixture(fixtures.MockPatch(
            'signal.signal')).mock
        service.setup_reports('snapdriver-agent')
        installed.assert_called_once_with(signal.SIGUSR2, mock.ANY)
        handle = self.useFixture(fixtures.MockPatchObject(
            gmr.TextGuruMeditation, 'handle_signal')).mock
        installed.call_args[0][1](signal.SIGUSR2, None)
        handle.assert_called_once_with(version, 'snapdriver-agent',
                                       '/var/log/snapdriver', None)

    def test_version_for_the_report(self):
        self.assertEqual('snapdriver', version.product_string())
        self.assertEqual(version.version_string(),
                         version.version_string_with_package())
