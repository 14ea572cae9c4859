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

"""auth_strategy = keystone: keystonemiddleware in front, faults in our
shape, and no start without credentials to validate tokens."""

import os
import tempfile

from keystoneauth1 import loading as ks_loading
import webtest

from snapdriver.api import app
from snapdriver import exception
from snapdriver.operations import api as operations_api
from snapdriver.tests import base


# Nothing listens on port 9 of loopback: Keystone is "down".
KEYSTONE = 'http://127.0.0.1:9/v3'


class TestKeystoneAuth(base.TestCase):

    def _configure(self, text):
        fd, path = tempfile.mkstemp(suffix='.conf')
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        self.conf.conf(['--config-file', path], project='snapdriver',
                       default_config_files=[])

    def _forget_plugin_options(self):
        # Loading the password plugin registers its options (auth_url is
        # required) on the global CONF; later tests must not inherit them.
        self.conf.conf.reset()
        for opt in ks_loading.get_auth_plugin_conf_options('password'):
            try:
                self.conf.conf.unregister_opt(opt, group='keystone_authtoken')
            except Exception:
                pass

    def _app(self):
        return webtest.TestApp(app.setup_app(
            operations_api.LocalOperationsAPI(None)))

    def test_refuses_to_start_without_service_credentials(self):
        self._configure('[DEFAULT]\nauth_strategy = keystone\n')
        error = self.assertRaises(exception.ConfigurationError, self._app)
        self.assertIn('[keystone_authtoken]', str(error))

    def test_faults_keep_our_shape(self):
        self._configure(
            '[DEFAULT]\nauth_strategy = keystone\n'
            '[keystone_authtoken]\nauth_type = password\n'
            'auth_url = %(k)s\nwww_authenticate_uri = %(k)s\n'
            'username = snapdriver\npassword = secret\n'
            'project_name = service\nuser_domain_name = Default\n'
            'project_domain_name = Default\nhttp_connect_timeout = 1\n'
            % {'k': KEYSTONE})
        self.addCleanup(self._forget_plugin_options)
        client = self._app()
        body = {'snapshot': {}}
        response = client.post_json('/v2.1/os-assisted-volume-snapshots',
                                    body, status=401)
        self.assertEqual(['unauthorized'], list(response.json))
        self.assertIn(KEYSTONE, response.headers['WWW-Authenticate'])
        self.assertIn('X-OpenStack-Nova-API-Version', response.headers)
        response = client.post_json(
            '/v2.1/os-assisted-volume-snapshots', body, status=503,
            headers={'X-Auth-Token': 'a-token'})
        self.assertEqual(['serviceUnavailable'], list(response.json))
        # Version discovery needs no token.
        client.get('/v2.1', status=200)
