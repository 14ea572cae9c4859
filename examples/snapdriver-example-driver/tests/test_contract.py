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

"""snapdriver's driver contract suite, run against the example driver.

The suite (``snapdriver.testing``, shipped with snapdriver) is the one
snapdriver's own fake and libvirt drivers run: creates, refused overlays,
pulls, commits, bad chain references, stopped guests, all through the
operation manager. A driver provides a ``Host`` that can attach volumes
and put files beside them as Cinder would.

Run from this directory, with the package installed beside snapdriver::

    python -m unittest discover -s tests -t .
"""

import json
import os
import struct

import fixtures

from snapdriver import testing
# Imported for its side effect: the [example_directory] options exist
# before the test sets one.
from snapdriver_example_driver import driver as example_driver  # noqa


def write_qcow2_header(path, backing=None, backing_format='qcow2'):
    """Just enough of a qcow2 image for the driver's header reader: a
    version 3 header, the backing format extension, the backing name."""
    header_size = 104
    name = backing.encode() if backing else b''
    extensions = b''
    if name:
        fmt = backing_format.encode()
        extensions += struct.pack('>II', 0xE2792ACA, len(fmt))
        extensions += fmt.ljust(len(fmt) + (-len(fmt) % 8), b'\0')
    extensions += struct.pack('>II', 0, 0)
    header = struct.pack('>4sIQI', b'QFI\xfb', 3,
                         header_size + len(extensions) if name else 0,
                         len(name))
    header = header.ljust(100, b'\0') + struct.pack('>I', header_size)
    with open(path, 'wb') as f:
        f.write(header + extensions + name)


class DirectoryHost(testing.Host):
    """A state file and a share directory per volume, in a temporary
    directory."""

    def __init__(self, test):
        self.root = test.useFixture(fixtures.TempDir()).path
        self.state = os.path.join(self.root, 'guests.json')
        self._write({'guests': []})
        test.conf.config(state_file=self.state, group='example_directory')
        # Through the entry point, as snapdriver loads it.
        self._driver = testing.load_driver('example_directory')

    def _write(self, data):
        with open(self.state, 'w', encoding='utf-8') as f:
            json.dump(data, f)

    def driver(self):
        return self._driver

    def add_volume(self, volume_id, layers=3, running=True):
        directory = os.path.join(self.root, volume_id)
        os.makedirs(directory)
        names = ['%s.%d' % (volume_id, i) for i in range(layers - 1, 0, -1)]
        names.append(volume_id)
        for upper, lower in zip(names, names[1:] + [None]):
            write_qcow2_header(os.path.join(directory, upper), lower)
        with open(self.state, encoding='utf-8') as f:
            data = json.load(f)
        data['guests'].append({
            'name': 'guest-' + volume_id, 'running': running,
            'disks': [{'target': 'vdb', 'serial': volume_id,
                       'directory': directory, 'chain': names}]})
        self._write(data)
        return names

    def add_file(self, volume_id, name, backing=None, fmt='qcow2'):
        path = os.path.join(self.root, volume_id, name)
        if fmt == 'qcow2':
            write_qcow2_header(path, backing)
        else:
            with open(path, 'wb') as f:
                f.write(b'\0' * 4096)


class TestDirectoryDriverContract(testing.DriverContractTests,
                                  testing.TestCase):

    def make_host(self):
        return DirectoryHost(self)
