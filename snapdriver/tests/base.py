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

"""Base classes of snapdriver's tests.

The unit base class refuses to run external commands or open libvirt
connections, so that nothing real runs by accident; tests that need a
command mock it, and functional tests (which run real ones) use
:class:`FunctionalTestCase`.
"""

import fixtures
import testtools

from snapdriver import conf as snapdriver_conf
from snapdriver.testing import base as testing_base

CONF = snapdriver_conf.CONF
#: The one fixture for a fresh configuration, shipped with the driver kit.
ConfFixture = testing_base.ConfFixture


class _Forbidden(Exception):
    pass


def _forbid(what):
    def refuse(*args, **kwargs):
        raise _Forbidden("unit tests must not %s (called with %r); mock it"
                         % (what, args))
    return refuse


def _keep_the_test_process_as_it_is(conf):
    # A console script's main() run in-process must not leave the test
    # runner on one CPU or with fewer malloc arenas for the tests after.
    conf.config(single_cpu=False, malloc_arenas=0)


class TestCase(testtools.TestCase):
    """Unit tests: no subprocesses, no libvirt connections."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(60, gentle=True))
        self.conf = self.useFixture(ConfFixture())
        _keep_the_test_process_as_it_is(self.conf)
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.processutils.execute',
            _forbid('run commands through processutils')))
        self.useFixture(fixtures.MonkeyPatch(
            'subprocess.Popen', _forbid('start subprocesses')))
        try:
            import libvirt  # noqa: F401
        except ImportError:
            pass
        else:
            for name in ('open', 'openReadOnly', 'openAuth'):
                self.useFixture(fixtures.MonkeyPatch(
                    'libvirt.' + name, _forbid('open libvirt connections')))


class FunctionalTestCase(testtools.TestCase):
    """Functional tests run real processes; they only get a fresh CONF."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.conf = self.useFixture(ConfFixture())
        _keep_the_test_process_as_it_is(self.conf)
        # Every qcow2 header the in-process reader answers for is read by
        # qemu-img as well: a disagreement fails the operation.
        self.conf.config(group='libvirt', verify_header_reader=True)
