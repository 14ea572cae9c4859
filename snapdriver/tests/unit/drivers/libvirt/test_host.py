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

"""Tests of the libvirt connection handling."""

from unittest import mock

import fixtures

from snapdriver.drivers.libvirt import host
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes

libvirt = fakes.libvirt


# Taken before any test replaces it (the base class makes it a no-op).
START_EVENT_LOOP = host.start_event_loop


class EventLoopTestCase(base.LibvirtTestCase):

    def test_started_once(self):
        self.useFixture(fixtures.MonkeyPatch(
            'snapdriver.drivers.libvirt.host._event_loop_thread', None))
        register = self.useFixture(fixtures.MockPatch(
            'libvirt.virEventRegisterDefaultImpl')).mock
        errors = self.useFixture(fixtures.MockPatch(
            'libvirt.registerErrorHandler')).mock
        thread = self.useFixture(fixtures.MockPatch(
            'threading.Thread')).mock
        START_EVENT_LOOP()
        START_EVENT_LOOP()
        register.assert_called_once_with()
        errors.assert_called_once_with(mock.ANY, None)
        thread.assert_called_once_with(target=host._run_event_loop,
                                       name='libvirt-event-loop',
                                       daemon=True)
        thread.return_value.start.assert_called_once_with()


class HostTestCase(base.LibvirtTestCase):

    def test_connection_errors(self):
        for code in (libvirt.VIR_ERR_SYSTEM_ERROR,
                     libvirt.VIR_ERR_INTERNAL_ERROR,
                     libvirt.VIR_ERR_INVALID_CONN):
            self.assertTrue(host.is_connection_error(
                fakes.libvirt_error(code, 'x')))
        self.assertFalse(host.is_connection_error(
            fakes.libvirt_error(libvirt.VIR_ERR_NO_DOMAIN, 'x')))

    def test_connection_kept_while_alive(self):
        connection = host.Host('qemu:///test', mock.Mock())
        first = connection.get_connection()
        self.assertIs(first, connection.get_connection())
        self.assertEqual(['qemu:///test'], self.opened)

    def test_event_handler_errors_are_logged_not_raised(self):
        handler = mock.Mock(side_effect=ValueError('bad'))
        connection = host.Host('qemu:///test', handler)
        connection.get_connection()
        self.images.add('/d/a')
        dom = self.conn.add_domain('g', [])
        self.conn.emit_block_job(dom, 'vda', 1, 0)
        handler.assert_called_once_with(dom.uuid, 'vda', 1, 0)
        self.assertIn('Handling a block job event failed', self.log.output)

    def test_missing_events_are_tolerated(self):
        def refuse(*args):
            raise fakes.libvirt_error(libvirt.VIR_ERR_NO_SUPPORT, 'nope')
        self.conn.domainEventRegisterAny = refuse
        connection = host.Host('qemu:///test', mock.Mock())
        self.assertIs(self.conn, connection.get_connection())
        self.assertIn('block jobs are followed by polling only',
                      self.log.output)

    def test_other_errors_are_not_retried(self):
        connection = host.Host('qemu:///test', mock.Mock())
        self.assertRaises(libvirt.libvirtError, connection.lookup, 'nope')
        self.assertEqual(1, len(self.opened))

    def test_connection_lost(self):
        connection = host.Host('qemu:///test', mock.Mock())
        connection.get_connection()
        eof = fakes.libvirt_error(
            libvirt.VIR_ERR_SYSTEM_ERROR, 'End of file while reading data: '
            'Input/output error', domain=libvirt.VIR_FROM_RPC)
        qemu = fakes.libvirt_error(
            libvirt.VIR_ERR_INTERNAL_ERROR, "unable to execute QEMU command "
            "'transaction': Could not open 'x'")
        self.assertTrue(connection.connection_lost(eof))
        # An internal error of QEMU's on a live connection is a refusal...
        self.assertFalse(connection.connection_lost(qemu))
        self.assertFalse(connection.connection_lost(fakes.libvirt_error(
            libvirt.VIR_ERR_OPERATION_INVALID, 'x',
            domain=libvirt.VIR_FROM_RPC)))
        # ... and a connection error once the connection is dead.
        self.conn.drop()
        self.assertTrue(connection.connection_lost(qemu))

    def test_reconnect_waits_for_libvirtd(self):
        connection = host.Host('qemu:///test', mock.Mock())
        connection.get_connection()
        self.conn.drop()
        refusals = [fakes.libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR,
                                        'Failed to connect socket')] * 3
        new = fakes.FakeConnection(self.images)

        def reopen(uri):
            if refusals:
                raise refusals.pop()
            return new
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', reopen))
        sleeps = []
        self.assertIs(new, connection.reconnect(10, 0.5,
                                                sleep=sleeps.append))
        self.assertEqual([0.5] * 3, sleeps)

    def test_reconnect_gives_up(self):
        connection = host.Host('qemu:///test', mock.Mock())
        connection.get_connection()
        self.conn.drop()

        def refuse(uri):
            raise fakes.libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR,
                                      'Failed to connect socket')
        self.useFixture(fixtures.MonkeyPatch('libvirt.open', refuse))
        clock = iter(range(100)).__next__
        error = self.assertRaises(
            libvirt.libvirtError, connection.reconnect, 5, 1, clock=clock,
            sleep=lambda seconds: None)
        self.assertEqual('Failed to connect socket', str(error))
