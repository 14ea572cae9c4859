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

"""noauth: the identity a caller sends is never the identity used."""

import webob

from snapdriver.api import middleware
from snapdriver.tests import base


class NoAuthHeadersTest(base.TestCase):

    def seen_by_application(self, headers):
        seen = {}

        def application(environ, start_response):
            seen.update(environ)
            return webob.Response('ok')(environ, start_response)

        request = webob.Request.blank('/v2.1/os-assisted-volume-snapshots',
                                      headers=headers)
        response = request.get_response(middleware.NoAuth(application))
        self.assertEqual(200, response.status_int)
        return seen

    def test_identity_headers_of_the_caller_are_dropped(self):
        forged = {
            'X-Service-Catalog': '[{"type": "volumev3", "endpoints": '
                                 '[{"publicURL": "http://attacker/"}]}]',
            'X-Roles': 'admin', 'X-Role': 'admin',
            'X-User-Id': 'admin', 'X-User-Name': 'admin',
            'X-User-Domain-Id': 'default', 'X-User-Domain-Name': 'Default',
            'X-Project-Id': 'victim', 'X-Project-Name': 'victim',
            'X-Project-Domain-Id': 'default', 'X-Tenant-Id': 'victim',
            'X-Tenant': 'victim', 'X-Domain-Id': 'default',
            'X-Identity-Status': 'Confirmed',
            'X-Service-Identity-Status': 'Confirmed',
            'X-Service-Roles': 'service', 'X-Service-User-Id': 'nova',
            'X-Service-Project-Id': 'service', 'X-Service-Token': 'x',
            'X-Is-Admin-Project': 'True', 'X-System-Scope': 'all',
            'X-Trust-Id': 't', 'X-Application-Credential-Id': 'c',
            'X-Authorization': 'x',
        }
        seen = self.seen_by_application(
            dict(forged, **{'X-Auth-Token': 'demo:demo'}))
        left = sorted(key for key in seen
                      if key.startswith('HTTP_X_')
                      and key not in ('HTTP_X_AUTH_TOKEN',
                                      'HTTP_X_IDENTITY_STATUS',
                                      'HTTP_X_USER_ID', 'HTTP_X_PROJECT_ID',
                                      'HTTP_X_ROLES'))
        self.assertEqual([], left)
        # What noauth sets, from the token alone.
        self.assertEqual('demo', seen['HTTP_X_USER_ID'])
        self.assertEqual('demo', seen['HTTP_X_PROJECT_ID'])
        self.assertEqual('member', seen['HTTP_X_ROLES'])
        self.assertEqual('demo:demo', seen['HTTP_X_AUTH_TOKEN'])

    def test_forged_catalog_does_not_reach_the_context(self):
        from snapdriver import context
        seen = self.seen_by_application({
            'X-Auth-Token': 'admin:p1',
            'X-Service-Catalog': '[{"type": "volumev3"}]'})
        self.assertEqual([], context.RequestContext.from_environ(
            seen).service_catalog)
