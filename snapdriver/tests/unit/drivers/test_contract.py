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

"""The driver contract suite against the fake driver and every stub."""

from snapdriver.drivers import fake
from snapdriver import testing
from snapdriver.tests import base


class FakeHost(testing.Host):

    def __init__(self):
        # Through stevedore, as the service loads it.
        self._driver = testing.load_driver('fake')

    def driver(self):
        return self._driver

    def add_volume(self, volume_id, layers=3, running=True):
        names = ['%s.%d' % (volume_id, i) for i in range(layers - 1, 0, -1)]
        names.append(volume_id)
        self._driver.add_guest({
            'name': 'guest-' + volume_id,
            'state': 'running' if running else 'shutoff',
            'disks': [{'target': 'vda', 'serial': 'other-volume',
                       'directory': '/share/other', 'chain': ['other']},
                      {'target': 'vdb', 'serial': volume_id,
                       'directory': '/share/' + volume_id, 'chain': names}]})
        return names

    def add_file(self, volume_id, name, backing=None, fmt='qcow2'):
        self._driver.add_file(volume_id, name, fmt=fmt, backing=backing)


class TestFakeDriverContract(testing.DriverContractTests, base.TestCase):

    def make_host(self):
        return FakeHost()


def _stub_case(name):
    class StubContract(testing.UnsupportedDriverContractTests,
                       base.TestCase):
        driver_name = name

        def make_host(self):
            driver = testing.load_driver(name)

            class StubHost(testing.Host):
                def driver(self):
                    return driver

                def add_volume(self, volume_id, layers=3, running=True):
                    raise AssertionError('stubs host no volumes')

                def add_file(self, volume_id, name, backing=None,
                             fmt='qcow2'):
                    raise AssertionError('stubs host no files')
            return StubHost()

    StubContract.__name__ = 'Test%sStubContract' % name.capitalize()
    StubContract.__qualname__ = StubContract.__name__
    return StubContract


STUBS = ('vmware', 'hyperv', 'ironic', 'zvm', 'powervm', 'xenapi')
for _name in STUBS:
    _case = _stub_case(_name)
    globals()[_case.__name__] = _case
del _name, _case, fake
