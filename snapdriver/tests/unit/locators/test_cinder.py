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

"""The cinder locator: the host Cinder recorded at attach time."""

from unittest import mock

from cinderclient import exceptions as cinder_exc
import fixtures
from keystoneauth1 import exceptions as ks_exc

from snapdriver import exception
from snapdriver.locators import base as locator_base
from snapdriver.locators import cinder as cinder_locator
from snapdriver import plugins
from snapdriver.tests import base


def volume(*host_names):
    return mock.Mock(attachments=[
        {'server_id': 'server-%d' % number, 'attachment_id': 'a-%d' % number,
         'device': '/dev/vdb', 'host_name': host_name}
        for number, host_name in enumerate(host_names)])


class TestCinderLocator(base.TestCase):

    def setUp(self):
        super().setUp()
        self.now = 100.0
        self.locator = cinder_locator.CinderLocator(clock=lambda: self.now)
        self.client = mock.Mock()
        self.client.volumes.get.return_value = volume('compute-1')
        self.access = self.useFixture(fixtures.MockPatchObject(
            self.locator, '_cinder')).mock
        self.access.client_for.return_value = self.client

    def locate(self, volume_id='vol-1', context='ctx'):
        return self.locator.locate(context, volume_id)

    def test_loaded_by_name(self):
        locator = plugins.load(locator_base.NAMESPACE, 'cinder',
                               'host locator', registry=mock.Mock(),
                               agents=mock.Mock())
        self.assertIsInstance(locator, cinder_locator.CinderLocator)
        self.assertEqual('cinder', locator.name)

    def test_the_attachment_host(self):
        self.assertEqual('compute-1', self.locate())
        self.access.client_for.assert_called_once_with('ctx')
        self.client.volumes.get.assert_called_once_with('vol-1')

    def test_two_attachments_on_one_host(self):
        self.client.volumes.get.return_value = volume('compute-1',
                                                      'compute-1')
        self.assertEqual('compute-1', self.locate())

    def test_no_attachment(self):
        for attachments in ([], None):
            self.client.volumes.get.return_value = mock.Mock(
                attachments=attachments)
            error = self.assertRaises(exception.VolumeNotAttached,
                                      self.locate)
            self.assertEqual(400, error.code)
            self.assertIn('Volume vol-1 is not attached', error.message)

    def test_several_hosts(self):
        self.client.volumes.get.return_value = volume('compute-2',
                                                      'compute-1')
        error = self.assertRaises(exception.VolumeOnSeveralHosts,
                                  self.locate)
        self.assertEqual(409, error.code)
        self.assertIn('(compute-1, compute-2)', error.message)

    def test_an_attachment_without_host(self):
        for hosts in ((None,), ('compute-1', None)):
            self.client.volumes.get.return_value = volume(*hosts)
            error = self.assertRaises(exception.AttachmentWithoutHost,
                                      self.locate)
            self.assertEqual(400, error.code)
            self.assertIn('volume vol-1', error.message)
            self.assertIn('admin or service role', error.message)

    def test_a_volume_cinder_does_not_know(self):
        self.client.volumes.get.side_effect = cinder_exc.NotFound(404)
        error = self.assertRaises(exception.VolumeNotAttached, self.locate)
        self.assertEqual(400, error.code)

    def test_cinder_fails(self):
        self.client.volumes.get.side_effect = cinder_exc.ClientException(
            500, message='Internal Server Error')
        error = self.assertRaises(exception.OperationFailed, self.locate)
        self.assertEqual(503, error.code)
        self.assertEqual("Cinder did not say where volume vol-1 is attached: "
                         "500 Internal Server Error", error.message)

    def test_cinder_cannot_be_reached(self):
        self.client.volumes.get.side_effect = ks_exc.ConnectFailure(
            'Unable to establish connection to https://cinder')
        error = self.assertRaises(exception.OperationFailed, self.locate)
        self.assertEqual(503, error.code)
        self.assertIn('Cinder cannot be reached to find where volume vol-1 '
                      'is attached: Unable to establish connection',
                      error.message)

    def test_no_credentials(self):
        self.access.client_for.return_value = None
        error = self.assertRaises(exception.OperationFailed, self.locate)
        self.assertEqual(503, error.code)
        self.assertIn('no [cinder] credentials and no caller token',
                      error.message)

    def test_cached_for_locator_cache_time(self):
        self.conf.config(locator_cache_time=30, group='api')
        self.assertEqual('compute-1', self.locate())
        self.client.volumes.get.return_value = volume('compute-2')
        self.now += 29.9
        self.assertEqual('compute-1', self.locate())
        self.assertEqual(1, self.client.volumes.get.call_count)
        self.now += 0.1
        self.assertEqual('compute-2', self.locate())
        self.assertEqual(2, self.client.volumes.get.call_count)
        # Each volume has its own entry.
        self.locate('vol-2')
        self.assertEqual(3, self.client.volumes.get.call_count)

    def test_no_cache(self):
        self.conf.config(locator_cache_time=0, group='api')
        self.locate()
        self.locate()
        self.assertEqual(2, self.client.volumes.get.call_count)

    def test_refusals_are_not_cached(self):
        self.client.volumes.get.return_value = volume()
        self.assertRaises(exception.VolumeNotAttached, self.locate)
        self.client.volumes.get.return_value = volume('compute-1')
        self.assertEqual('compute-1', self.locate())

    def test_forget(self):
        self.assertFalse(self.locator.forget('vol-1'))
        self.locate()
        self.client.volumes.get.return_value = volume('compute-2')
        self.assertTrue(self.locator.forget('vol-1'))
        self.assertEqual('compute-2', self.locate())
        self.assertFalse(self.locator.forget('vol-2'))

    def test_cache_size(self):
        self.useFixture(fixtures.MockPatchObject(cinder_locator,
                                                 'CACHE_SIZE', 2))
        for volume_id in ('vol-1', 'vol-2', 'vol-3'):
            self.locate(volume_id)
        self.assertEqual(['vol-2', 'vol-3'], sorted(self.locator._cache))
