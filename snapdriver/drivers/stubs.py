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

"""Stub drivers for hypervisors that cannot do assisted snapshots.

A stub is not a fake. A fake pretends to succeed; a stub fails every
operation, on purpose, before anything happens, with a message that names
the driver and says why: the compute API's assisted volume snapshots exist
only in its libvirt driver, because they need a hypervisor that can switch
a running guest onto an external qcow2 overlay and merge overlays with
block jobs. The other compute drivers answer these requests with an error,
and so do these.

They load fine, so that a deployment configured with one of them starts
and tells each caller plainly why its request cannot be served.
"""

from snapdriver.drivers import base
from snapdriver import exception


class UnsupportedDriver(base.BaseDriver):
    """Rejects every operation with UnsupportedOperation (HTTP 400)."""

    def _reject(self, operation):
        raise exception.UnsupportedOperation(
            driver=self.name or type(self).__name__, operation=operation)

    def capabilities(self):
        return base.Capabilities()

    def locate_disk(self, volume_id):
        self._reject('locating the disks of volumes')

    def inspect_overlay(self, location, new_file):
        self._reject('inspecting snapshot overlays')

    def create_snapshot(self, plan):
        self._reject('creating assisted volume snapshots')

    def delete_snapshot(self, plan):
        self._reject('deleting assisted volume snapshots')


class VMwareDriver(UnsupportedDriver):
    """VMware vCenter: volumes are VMDKs, snapshotted by vCenter itself."""


class HyperVDriver(UnsupportedDriver):
    """Hyper-V: volumes are iSCSI/SMB disks, not qcow2 chains."""


class IronicDriver(UnsupportedDriver):
    """Ironic: bare metal has no hypervisor to switch a disk's overlay."""


class ZVMDriver(UnsupportedDriver):
    """z/VM: no qcow2 chains and no block jobs."""


class PowerVMDriver(UnsupportedDriver):
    """PowerVM: volumes are attached through the VIOS, not as qcow2."""


class XenAPIDriver(UnsupportedDriver):
    """XenAPI: VDIs are snapshotted by XAPI, not through qcow2 overlays."""
