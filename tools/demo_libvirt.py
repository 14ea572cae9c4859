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

"""One full assisted-snapshot cycle against a local TCG guest.

Run by tools/demo-libvirt.sh, which provides a private libvirtd. Starts
snapdriver-api with the libvirt driver on loopback, attaches a Cinder-style
volume to a guest with no OS, writes data into it as the guest would, then
does what Cinder does: create an overlay and ask for a snapshot; create a
second one; delete the first (a block commit); and checks after each step
that the guest still sees its data and that the chain is as expected.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from snapdriver.tests.functional import guest

TOKEN = {'X-Auth-Token': 'admin:demo'}


def call(method, url, body=None, headers=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers=dict(headers))
    if data:
        request.add_header('Content-Type', 'application/json')
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        return response.status, json.loads(text) if text else None


def wait_for(api, snapshot_id, count):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, body = call('GET', '%s/os-assisted-volume-snapshots/%s'
                       % (api, snapshot_id))
        operation = body['operations'][-1]
        if len(body['operations']) >= count and operation['state'] in (
                'succeeded', 'failed'):
            return operation
        time.sleep(0.1)
    raise SystemExit('snapshot %s did not finish' % snapshot_id)


def step(title):
    print('\n== %s' % title, flush=True)


def main():
    uri = guest.libvirt_uri()
    if not uri:
        raise SystemExit(guest.SKIP_REASON)
    work = tempfile.mkdtemp(prefix='snapdriver-demo-')
    share = os.path.join(work, 'share')
    os.makedirs(share)
    volume_id = '0c6a31d2-7d3e-4f4a-9b51-3f3c2f0e9a10'
    vm = guest.GuestFixture(uri, share, volume_id, size_mb=64,
                            extra_disks=[guest.Disk('vda')],
                            volume_target='vdb')
    vm.setUp()
    server = None
    try:
        port = int(os.environ.get('SNAPDRIVER_DEMO_PORT', '18776'))
        conf = os.path.join(work, 'snapdriver.conf')
        with open(conf, 'w') as f:
            f.write('[DEFAULT]\ndriver = libvirt\nstatus_reporter = log\n'
                    'auth_strategy = noauth\n'
                    '[api]\nbind_host = 127.0.0.1\nbind_port = %d\n'
                    '[database]\nconnection = sqlite:///%s/journal.sqlite\n'
                    '[libvirt]\nconnection_uri = %s\nquiesce = never\n'
                    % (port, work, uri))
        bin_dir = os.path.dirname(sys.executable)
        subprocess.run([os.path.join(bin_dir, 'snapdriver-manage'),
                        '--config-file', conf, 'db', 'sync'], check=True)
        log = open(os.path.join(work, 'snapdriver.log'), 'w')
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), 'snapdriver-api'),
             '--config-file', conf], stdout=log, stderr=subprocess.STDOUT)
        api = 'http://127.0.0.1:%d/v2.1' % port
        for _ in range(100):
            try:
                call('GET', api, headers={})
                break
            except OSError:
                time.sleep(0.1)

        data = guest.DataModel(vm.size)
        step('guest %s runs with volume %s as vdb; writing data as the '
             'guest would' % (vm.name, volume_id))
        data.write_live(vm.domain, 0xa1, 0, 4 * guest.MiB, vm.volume_alias)
        print('chain:', ' -> '.join(os.path.basename(p) for p in vm.chain()))

        for snap, base in (('snap-1', vm.volume_name),
                           ('snap-2', vm.volume_name + '.snap-1')):
            step('Cinder creates overlay %s.%s and asks for snapshot %s'
                 % (vm.volume_name, snap, snap))
            new_file = '%s.%s' % (vm.volume_name, snap)
            guest.create_overlay(share, new_file, base)
            status, body = call('POST', api + '/os-assisted-volume-snapshots',
                                {'snapshot': {'volume_id': volume_id,
                                              'create_info': {
                                                  'snapshot_id': snap,
                                                  'type': 'qcow2',
                                                  'new_file': new_file}}})
            print('POST ->', status, body)
            operation = wait_for(api, snap, 1)
            print('operation:', operation['state'], 'in',
                  operation['duration_seconds'], 's; chain:',
                  ' -> '.join(operation['chain']))
            data.write_live(vm.domain, 0xb0 + len(snap), 4 * guest.MiB,
                            guest.MiB, vm.volume_alias)

        step('Cinder deletes snapshot snap-1: commit it into the base')
        info = {'volume_id': volume_id, 'type': 'qcow2',
                'file_to_merge': vm.volume_name + '.snap-1',
                'merge_target_file': vm.volume_name}
        status, _ = call('DELETE', '%s/os-assisted-volume-snapshots/snap-1'
                         '?delete_info=%s' % (api, urllib.request.quote(
                             json.dumps(info))))
        print('DELETE ->', status)
        operation = wait_for(api, 'snap-1', 2)
        print('operation:', operation['kind'], operation['state'], 'in',
              operation['duration_seconds'], 's; chain:',
              ' -> '.join(operation['chain']))

        step('checks')
        data.assert_matches(vm.active_path())
        print('guest-visible data: identical to what was written')
        for entry in guest.backing_chain(vm.active_path()):
            print('  %-60s backing %s' % (os.path.basename(entry['filename']),
                                          entry.get('backing-filename')))
        guest.assert_relative_backing(vm.active_path())
        print('every backing name is relative; demo files in', work)
        return 0 if operation['state'] == 'succeeded' else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        vm.cleanUp()


if __name__ == '__main__':
    sys.exit(main())
