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

"""A test case for driver tests: a fresh view of the configuration."""

import fixtures
from oslo_config import fixture as config_fixture
import testtools

from snapdriver import conf as snapdriver_conf
from snapdriver.drivers import loader
from snapdriver import policy


class ConfFixture(config_fixture.Config):
    """Give each test a fresh view of snapdriver's options and policy.

    ``self.conf.config(name=value, group=...)`` sets an option (a driver's
    own too, once its module registered it) for one test.
    """

    def __init__(self):
        super().__init__(snapdriver_conf.CONF)

    def setUp(self):
        super().setUp()
        snapdriver_conf.CONF([], project='snapdriver', default_config_files=[])
        policy.reset()
        self.addCleanup(policy.reset)


class TestCase(testtools.TestCase):
    """A testtools test case with ``self.conf`` (a :class:`ConfFixture`)
    and a timeout of :attr:`timeout` seconds."""

    timeout = 600

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(self.timeout, gentle=True))
        self.conf = self.useFixture(ConfFixture())


def load_driver(name):
    """The driver ``name``, loaded by entry point as snapdriver loads it.

    :raises: DriverNotFound, DriverLoadError
    """
    return loader.load(name)
