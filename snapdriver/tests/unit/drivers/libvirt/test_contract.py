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

"""The driver contract suite against the libvirt driver, on fakes.

The same suite runs against the fake driver; here the libvirt driver is
loaded through stevedore, as the service loads it, and runs on the fake
libvirt connection and the fake qemu-img, with the overlays Cinder would
create as real (empty) files where the driver looks at them.
"""

import os

import fixtures

from snapdriver.drivers import loader
from snapdriver.tests import contract
from snapdriver.tests.unit.drivers.libvirt import base
from snapdriver.tests.unit.drivers.libvirt import fakes


class FakeLibvirtHost(contract.Host):

    def __init__(self, root, conn):
        self._root = root
        self._conn = conn
        self._driver = loader.load('libvirt')

    def driver(self):
        return self._driver

    def _directory(self, volume_id):
        return os.path.join(self._root, volume_id)

    def add_volume(self, volume_id, layers=3, running=True):
        names = ['%s.%d' % (volume_id, i) for i in range(layers - 1, 0, -1)]
        names.append(volume_id)
        directory = self._directory(volume_id)
        active = self._conn.images.add_chain(directory, names)
        for name in names:
            fakes.touch(os.path.join(directory, name))
        self._conn.images.add('/var/lib/images/other')
        self._conn.add_domain('guest-' + volume_id, [
            fakes.FakeDisk('vda', serial='other-volume',
                           path='/var/lib/images/other'),
            fakes.FakeDisk('vdb', serial=volume_id, path=active)],
            running=running)
        return names

    def add_file(self, volume_id, name, backing=None, fmt='qcow2'):
        path = os.path.join(self._directory(volume_id), name)
        fakes.touch(path)
        self._conn.images.add(path, fmt=fmt, backing=backing)


class TestLibvirtDriverContract(contract.DriverContractTests,
                                base.LibvirtTestCase):

    def make_host(self):
        root = self.useFixture(fixtures.TempDir()).path
        return FakeLibvirtHost(root, self.conn)
