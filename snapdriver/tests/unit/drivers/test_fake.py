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

"""The fake driver's inventory handling."""

import json
import os
import tempfile

from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver.tests import base


class TestInventory(base.TestCase):

    def _write(self, text, suffix='.json'):
        fd, path = tempfile.mkstemp(suffix=suffix)
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        return path

    def test_json_and_yaml(self):
        doc = {'guests': [{'name': 'vm', 'disks': [
            {'target': 'vda', 'serial': 'v', 'directory': '/d',
             'chain': ['a', 'b']}]}]}
        for text, suffix in ((json.dumps(doc), '.json'),
                             ('guests:\n- name: vm\n  disks:\n'
                              '  - {target: vda, serial: v, directory: /d,'
                              ' chain: [a, b]}\n', '.yaml')):
            self.conf.config(inventory_file=self._write(text, suffix),
                             group='fake')
            disk = fake.FakeDriver().locate_disk('v')
            self.assertEqual(['a', 'b'], disk.names)
            self.assertEqual('/d/a', disk.active.path)
            self.assertTrue(disk.running)

    def test_demo_inventory_loads(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
        guests = fake.load_inventory(
            os.path.join(top, 'etc', 'snapdriver', 'demo-inventory.json'))
        self.assertEqual(['demo-vm1', 'demo-vm2'], [g['name'] for g in guests])

    def test_errors_name_the_problem(self):
        cases = [
            ('{', 'not valid JSON'),
            ('[]', "'guests' list"),
            ('{"guests": [{"disks": []}]}', "needs a 'name'"),
            ('{"guests": [{"name": "g", "state": "paused"}]}', "'paused'"),
            ('{"guests": [{"name": "g", "disks": [{"serial": "v"}]}]}',
             "needs a 'target'"),
            ('{"guests": [{"name": "g", "disks": [{"target": "vda", '
             '"serial": "v", "directory": "/d", "chain": []}]}]}',
             "non-empty 'chain'"),
            ('{"guests": [{"name": "g", "disks": [{"target": "vda", '
             '"serial": "v", "chain": ["a"]}]}]}', "needs a 'directory'"),
        ]
        for text, words in cases:
            error = self.assertRaises(exception.DriverLoadError,
                                      fake.load_inventory, self._write(text))
            self.assertIn(words, str(error))

    def test_multi_attach_refused(self):
        driver = fake.FakeDriver()
        for name in ('a', 'b'):
            driver.add_guest({'name': name, 'disks': [
                {'target': 'vdb', 'serial': 'shared', 'directory': '/d',
                 'chain': ['v']}]})
        error = self.assertRaises(exception.VolumeMultiAttached,
                                  driver.locate_disk, 'shared')
        self.assertIn('a, b', str(error))

    def test_disk_without_serial_is_ignored(self):
        driver = fake.FakeDriver()
        driver.add_guest({'name': 'g', 'disks': [{'target': 'hdc'}]})
        self.assertRaises(exception.VolumeNotAttached, driver.locate_disk,
                          'anything')

    def test_network_disk_overlays_cannot_be_inspected(self):
        driver = fake.FakeDriver()
        driver.add_guest({'name': 'g', 'disks': [
            {'target': 'vdb', 'serial': 'n', 'type': 'network',
             'chain': ['vol1/root.img']}]})
        disk = driver.locate_disk('n')
        self.assertIsNone(driver.inspect_overlay(disk, 'x'))
        self.assertEqual('network', disk.source_type)

    def test_injected_failure(self):
        driver = fake.FakeDriver()
        driver.add_guest({'name': 'g', 'disks': [
            {'target': 'vda', 'serial': 'v', 'directory': '/d',
             'chain': ['a', 'b', 'c'], 'fail': ['commit']}]})
        from snapdriver import chain
        plan = chain.plan_delete(driver.locate_disk('v'), 's', 'b', 'c')
        self.assertRaises(exception.OperationFailed, driver.delete_snapshot,
                          plan)
        self.assertEqual(['a', 'b', 'c'], driver.locate_disk('v').names)
