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

"""The base class of the libvirt driver's unit tests."""

import logging

import fixtures
import testtools

from snapdriver.drivers.libvirt import driver
from snapdriver.tests import base
from snapdriver.tests.unit.drivers.libvirt import fakes

requires_binding = testtools.skipIf(
    fakes.libvirt is None, "the libvirt Python binding is not installed")


@requires_binding
class LibvirtTestCase(base.TestCase):
    """A driver on a fake libvirt connection and a fake qemu-img.

    ``self.images`` holds the image files, ``self.conn`` the connection
    (with its recorded calls) and ``self.qemu_img`` the recorded commands.
    """

    def setUp(self):
        super().setUp()
        self.images = fakes.FakeImages()
        self.conn = fakes.FakeConnection(self.images)
        self.qemu_img = fakes.FakeQemuImg(self.images)
        self.opened = []
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.processutils.execute', self.qemu_img))
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qemuimg._execute_with_progress',
            self.qemu_img.with_progress))
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', self._open))
        # No event loop thread: the fake delivers events synchronously.
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.host.start_event_loop',
            lambda: None))
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.qemuimg.find',
            lambda: '/usr/bin/qemu-img'))
        self.useFixture(fixtures.MonkeyPatch(
            'libvirt_qemu.qemuMonitorCommand',
            lambda dom, command, flags: dom.monitor_command(command, flags)))
        self.conf.config(group='libvirt', block_job_poll_interval=0.01,
                         connection_uri='qemu:///test')

    def _open(self, uri):
        self.opened.append(uri)
        return self.conn

    def make_driver(self):
        return driver.LibvirtDriver()

    def restart_libvirtd(self):
        """A new libvirtd with the same domains: the next connection opened
        is a new one. The old one still looks alive until the caller drops
        it (or sets ``alive``).

        :returns: the old connection.
        """
        old = self.conn
        self.conn = fakes.FakeConnection(self.images)
        self.conn.domains = old.domains
        self.conn.handles = old.handles
        for domain in old.domains:
            domain.conn = self.conn
        return old
