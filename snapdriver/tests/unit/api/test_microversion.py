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

"""Reading the microversion a request asks for (microversion_parse)."""

import webob

from snapdriver.api import microversion
from snapdriver.tests import base


def negotiate(new=None, legacy=None):
    headers = {}
    if new is not None:
        headers[microversion.HEADER] = new
    if legacy is not None:
        headers[microversion.LEGACY_HEADER] = legacy
    request = webob.Request.blank('/v2.1', headers=headers)
    return microversion.negotiate(request.headers)


class NegotiateTest(base.TestCase):

    def test_versions(self):
        self.assertEqual((2, 1), negotiate())
        self.assertEqual((2, 26), negotiate(legacy='2.26'))
        self.assertEqual((2, 27), negotiate(new='compute 2.27'))
        self.assertEqual((2, 7), negotiate(new='COMPUTE\t2.7'))
        self.assertEqual(microversion.MAX_VERSION,
                         negotiate(new='compute latest'))
        self.assertEqual(microversion.MAX_VERSION,
                         negotiate(legacy=' latest '))
        # Another service's entry is not ours: the legacy header, or the
        # minimum.
        self.assertEqual((2, 1), negotiate(new='volume 3.6'))
        self.assertEqual((2, 5), negotiate(
            new='volume 3.6',
            legacy='2.5'))
        self.assertEqual((2, 80), negotiate(
            new='volume 3.0, compute 2.80'))
        # The new header wins over the legacy one.
        self.assertEqual((2, 30), negotiate(
            new='compute 2.30',
            legacy='2.20'))

    def test_refused(self):
        for text in ('abc', '2.01', '2.', '.1', '2.1.1', '0.5', ''):
            self.assertRaises(microversion.InvalidVersionFormat, negotiate,
                              legacy=text)
        for text in ('2.0', '1.9', '3.0', '2.97'):
            self.assertRaises(microversion.VersionNotSupported, negotiate,
                              new='compute ' + text)
